"""What Go's encoding/json and time packages do, where Ollama clients can tell: compact output,
`omitempty`, RFC 3339 times, strconv.Quote, typed struct fields and the decoder's error messages.

Every dialect's wire schema builds on this module; nothing here knows a route.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

# -- output -------------------------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    """Compact JSON, UTF-8 as is, NaN refused (Go's json.Marshal)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def omit_empty(fields: dict[str, Any]) -> dict[str, Any]:
    """`omitempty` on string, slice, map and pointer fields: drop "", [], {} and None, keep the
    order of the rest (numbers and booleans are always written where the schema uses this)."""
    return {k: v for k, v in fields.items() if not (v is None or (isinstance(v, (str, list, dict)) and not v))}


def go_quote(text: str) -> str:
    """Go's strconv.Quote for the characters that occur in practice."""
    return json.dumps(text, ensure_ascii=False)


def go_number(value: Any) -> Any:
    """Go prints whole floats without a fraction (100000, not 100000.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def rfc3339(ts: datetime) -> str:
    """UTC, RFC 3339, fractional seconds without trailing zeros, `Z`, as Go marshals time.Time."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    base = ts.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ts.microsecond:06d}".rstrip("0")
    offset = ts.utcoffset()
    if offset is None or offset.total_seconds() == 0:
        zone = "Z"
    else:
        zone = ts.strftime("%z")
        zone = zone[:3] + ":" + zone[3:]
    return f"{base}.{frac}{zone}" if frac else f"{base}{zone}"


def rfc3339_now() -> str:
    return rfc3339(datetime.now(timezone.utc))


# -- input --------------------------------------------------------------------------------------


class GoDecodeError(Exception):
    """A body Go's decoder would refuse, with its message (the API answers it with a 400)."""


_KINDS = {str: "string", bool: "bool", list: "array", dict: "object"}


def json_kind(value: Any) -> str:
    """The JSON kind Go's decoder names in `cannot unmarshal <kind>`."""
    return _KINDS.get(type(value), "number")


def go_type_name(value: Any) -> str:
    """Go's %T of a decoded JSON value (for `invalid type for 'stop' field: %T`)."""
    if value is None:
        return "<nil>"
    return {str: "string", bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}.get(
        type(value), "float64")


def unmarshal_error(got: str, struct_field: str, go_type: str) -> GoDecodeError:
    return GoDecodeError(f"json: cannot unmarshal {got} into Go struct field {struct_field} of type {go_type}")


_GO_TYPES = {str: "string", bool: "bool", list: "[]", dict: "map", int: "int", float: "float64"}


def field(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None,
          go_type: str = "", struct: str = "") -> Any:
    """A typed field of an Ollama request: null -> default; a wrong JSON type -> Go's words.

    `struct` is where Go's decoder says the field is: the request's struct name, then the JSON path
    to a nested field without indexes (`ChatRequest.messages` for a message's own fields)."""
    value = body.get(key)
    if value is None:
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool in kinds or not isinstance(value, bool):
        if isinstance(value, kinds):
            return value
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise unmarshal_error(json_kind(value), f"{struct}.{key}", go_type or _GO_TYPES[kinds[0]])


def str_list(body: dict[str, Any], key: str, struct: str, go_type: str = "[]string", item_type: str = "string",
             ) -> list[str]:
    """A field of Go type []string (or []ImageData, which a JSON string of base64 fills)."""
    items = field(body, key, list, [], go_type, struct)
    for item in items:
        if not isinstance(item, str):
            raise unmarshal_error(json_kind(item), f"{struct}.{key}", item_type)
    return items


def struct_field(body: dict[str, Any], key: str, kind: type, go_type: str, struct: str) -> Any:
    """A typed field of a named Go struct (the OpenAI types): None when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 1e300:  # float() overflows: Go's decoder refuses such a number too
            raise unmarshal_error("number", f"{struct}.{key}", go_type)
        return float(value)
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
        return value
    got = f"number {value}" if kind is int and isinstance(value, float) else json_kind(value)
    raise unmarshal_error(got, f"{struct}.{key}", go_type)


def _decode_message(body: str, err: json.JSONDecodeError) -> str:
    """Approximate Go encoding/json's wording, which clients and tests match on."""
    if err.pos >= len(body.rstrip()):
        return "unexpected EOF"
    ch = body[err.pos]
    if "property name" in err.msg:
        return f"invalid character '{ch}' looking for beginning of object key string"
    if "Extra data" in err.msg:
        return f"invalid character '{ch}' after top-level value"
    return f"invalid character '{ch}' looking for beginning of value"


def _reject_constant(name: str) -> None:
    # Python accepts NaN/Infinity literals; JSON (and Go) do not.
    raise GoDecodeError(f"invalid character '{name[0]}' looking for beginning of value")


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _replace_surrogates(value: Any) -> Any:
    """Go's decoder turns a lone `\\ud800` escape into U+FFFD; Python keeps an unencodable surrogate."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def decode_object(raw: bytes) -> dict[str, Any]:
    """A body as a JSON object, errors worded as Go's encoding/json words them."""
    if not raw.strip():
        raise GoDecodeError("missing request body")
    text = raw.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise GoDecodeError(_decode_message(text, err)) from None
    except RecursionError:
        raise GoDecodeError("exceeded max depth") from None
    except ValueError:  # an integer literal past Python's 4300-digit conversion limit
        raise GoDecodeError("json: cannot unmarshal number into Go value: number out of range") from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise GoDecodeError(f"json: cannot unmarshal {json_kind(obj)} into Go value of type api.Request")
    if _SURROGATE_ESCAPE.search(text):
        try:
            obj = _replace_surrogates(obj)
        except RecursionError:
            raise GoDecodeError("exceeded max depth") from None
    return obj
