"""Ollama-shaped errors: `{"error": "..."}` with Ollama's status codes, and lenient JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"


class APIError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON_TYPE)


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _go_decode_message(body: str, err: json.JSONDecodeError) -> str:
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
    raise APIError(400, f"invalid character '{name[0]}' looking for beginning of value")


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object whatever the Content-Type (curl -d sends form-encoded)."""
    raw = await request.body()
    if not raw.strip():
        raise APIError(400, "missing request body")
    text = raw.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise APIError(400, _go_decode_message(text, err)) from None
    except RecursionError:
        raise APIError(400, "exceeded max depth") from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(obj), "number")
        raise APIError(400, f"json: cannot unmarshal {kind} into Go value of type api.Request")
    return obj


def field(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None, go_type: str = "") -> Any:
    """A typed field: null -> default; a wrong JSON type -> 400 in Go's words."""
    value = body.get(key)
    if value is None:
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool in kinds or not isinstance(value, bool):
        if isinstance(value, kinds):
            return value
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    got = {str: "string", bool: "bool", list: "array", dict: "object"}.get(type(value), "number")
    want = go_type or {str: "string", bool: "bool", list: "[]", dict: "map", int: "int", float: "float64"}[kinds[0]]
    raise APIError(400, f"json: cannot unmarshal {got} into Go struct field .{key} of type {want}")
