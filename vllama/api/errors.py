"""Ollama-shaped errors: `{"error": "..."}` with Ollama's status codes, and lenient JSON bodies."""

from __future__ import annotations

import json
import os
import re
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


# A JSON request body larger than this is a 413 (images travel base64 in JSON, so it is generous);
# VLLAMA_MAX_REQUEST_BYTES overrides it. Blob uploads stream to disk and have no such limit.
MAX_REQUEST_BYTES = 32 << 20
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def max_request_bytes() -> int:
    try:
        return int(os.environ.get("VLLAMA_MAX_REQUEST_BYTES", "").strip() or MAX_REQUEST_BYTES)
    except ValueError:
        return MAX_REQUEST_BYTES


async def read_raw(request: Request) -> bytes:
    """The raw body, refused with a 413 past `max_request_bytes()` without reading the rest."""
    limit = max_request_bytes()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(413, "http: request body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, "http: request body too large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    request._body = raw  # what Request.body() caches, for anything that reads it again
    return raw


def _replace_surrogates(value: Any) -> Any:
    """Go's decoder turns a lone `\\ud800` escape into U+FFFD; Python keeps an unencodable surrogate."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def parse_json(raw: bytes) -> dict[str, Any]:
    """A body as a JSON object, errors worded as Go's encoding/json words them."""
    if not raw.strip():
        raise APIError(400, "missing request body")
    text = raw.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise APIError(400, _go_decode_message(text, err)) from None
    except RecursionError:
        raise APIError(400, "exceeded max depth") from None
    except ValueError:  # an integer literal past Python's 4300-digit conversion limit
        raise APIError(400, "json: cannot unmarshal number into Go value: number out of range") from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(obj), "number")
        raise APIError(400, f"json: cannot unmarshal {kind} into Go value of type api.Request")
    if _SURROGATE_ESCAPE.search(text):
        try:
            obj = _replace_surrogates(obj)
        except RecursionError:
            raise APIError(400, "exceeded max depth") from None
    return obj


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object whatever the Content-Type (curl -d sends form-encoded)."""
    return parse_json(await read_raw(request))


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
