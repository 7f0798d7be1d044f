"""Errors as HTTP: the one table from failure kinds to status codes, and request bodies read with
Ollama's limits (a body over the limit is a 413 before it is read in full)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request

from ..config import env_int
from ..serving.errors import BadRequest, Busy, Failed, NotFound, ServingError
from .gojson import GoDecodeError, decode_object


class APIError(Exception):
    """A failure the HTTP layer itself finds (a body it cannot read), with its status code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# Every failure kind and the status code Ollama answers it with.
STATUS: dict[type[Exception], int] = {
    GoDecodeError: 400,
    BadRequest: 400,
    NotFound: 404,
    Failed: 500,
    Busy: 503,
}


def status_and_message(err: Exception) -> tuple[int, str]:
    """(status, message) of any failure the API answers; anything unexpected is a 500."""
    if isinstance(err, APIError):
        return err.status, err.message
    if isinstance(err, ServingError):
        return STATUS[type(err)], err.message
    if isinstance(err, GoDecodeError):
        return 400, str(err)
    return 500, str(err) or type(err).__name__


class Refused(Exception):
    """A request Ollama's /v1 middleware (OpenAI's or Anthropic's) refuses before its native
    handler runs: the body does not decode into the dialect's struct, or does not convert to a
    native request. gin's c.JSON answers those, `application/json; charset=utf-8` with no newline
    after the body; what the native handler refuses goes through the middleware's writer instead
    (plain `application/json`, a newline)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@contextlib.contextmanager
def middleware() -> Iterator[None]:
    """Failures in here are the /v1 middleware's (see Refused)."""
    try:
        yield
    except (APIError, ServingError, GoDecodeError) as err:
        raise Refused(*status_and_message(err)) from None


def as_api_error(err: Exception) -> APIError:
    status, message = status_and_message(err)
    return APIError(status, message)


# A JSON request body larger than this is a 413 (images travel base64 in JSON, so it is generous);
# VLLAMA_MAX_REQUEST_BYTES overrides it. Blob uploads stream to disk and have no such limit.
MAX_REQUEST_BYTES = 32 << 20


def max_request_bytes() -> int:
    return env_int("VLLAMA_MAX_REQUEST_BYTES", MAX_REQUEST_BYTES)


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


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object whatever the Content-Type (curl -d sends form-encoded)."""
    return decode_object(await read_raw(request))
