"""Serving events -> Ollama's answers: NDJSON (one object per line, flushed per event, errors in-band
after the first byte) or, with `stream: false`, one object."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from ...serving.errors import ServingError
from ...serving.events import Done, Event, collect
from ..errors import APIError, status_and_message
from ..gojson import GoDecodeError, dumps
from . import schema

NDJSON_TYPE = "application/x-ndjson"
log = logging.getLogger("vllama.api")


def chunk(model: str, is_chat: bool, event: Event) -> dict[str, Any]:
    if isinstance(event, Done):
        return schema.final(model, is_chat, event)
    return schema.response(model, is_chat, event.content, event.thinking, event.tool_calls, event.logprobs)


async def chunks(model: str, is_chat: bool, events: AsyncIterator[Event]) -> AsyncIterator[dict[str, Any]]:
    async for event in events:
        yield chunk(model, is_chat, event)


async def _lines(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    if first is not None:
        yield dumps(first) + b"\n"
    try:
        async for item in rest:
            yield dumps(item) + b"\n"
    except Exception as err:  # the stream has started: report in-band, keep the server up
        if not isinstance(err, (APIError, ServingError, GoDecodeError)):
            log.exception("stream failed")
        yield dumps({"error": status_and_message(err)[1]}) + b"\n"


async def ndjson_response(items: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """Pull the first object before answering, so an early failure is a plain HTTP error."""
    iterator = items.__aiter__()
    try:
        first: dict[str, Any] | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    return StreamingResponse(_lines(first, iterator), media_type=NDJSON_TYPE)


async def whole(model: str, is_chat: bool, events: AsyncIterator[Event]) -> dict[str, Any]:
    """`stream: false`: the deltas concatenated into the final object."""
    answer = await collect(events, unfinished="stop")
    out = schema.final(model, is_chat, answer.done)
    if is_chat:
        out["message"] = schema.message(answer.content, answer.thinking, answer.tool_calls)
    else:
        out["response"] = answer.content
        if answer.thinking:
            out["thinking"] = answer.thinking
    if answer.logprobs:
        out["logprobs"] = answer.logprobs
    return out
