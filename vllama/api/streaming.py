"""NDJSON framing: one JSON object per line, flushed per chunk, errors in-band after the first byte."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from starlette.responses import StreamingResponse

from .errors import APIError, dumps

NDJSON_TYPE = "application/x-ndjson"
log = logging.getLogger("vllama.api")


def rfc3339_now() -> str:
    """UTC, RFC 3339, fractional seconds without trailing zeros, `Z`, as Go marshals time.Time."""
    return rfc3339(datetime.now(timezone.utc))


def rfc3339(ts: datetime) -> str:
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


async def _ndjson_lines(chunks: AsyncIterator[dict[str, Any]], first: dict[str, Any] | None) -> AsyncIterator[bytes]:
    if first is not None:
        yield dumps(first) + b"\n"
    try:
        async for chunk in chunks:
            yield dumps(chunk) + b"\n"
    except APIError as err:
        yield dumps({"error": err.message}) + b"\n"
    except Exception as err:  # the stream has started: report in-band, keep the server up
        log.exception("stream failed")
        yield dumps({"error": str(err) or type(err).__name__}) + b"\n"


async def ndjson_response(chunks: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """Pull the first chunk before answering, so an early failure is a plain HTTP error."""
    iterator = chunks.__aiter__()
    try:
        first = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    return StreamingResponse(_ndjson_lines(iterator, first), media_type=NDJSON_TYPE)
