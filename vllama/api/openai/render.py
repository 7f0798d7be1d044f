"""Serving events -> OpenAI's answers: server-sent events (`data: {...}`, then `data: [DONE]`; an
error after the first byte is an SSE error event) or one completion object."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from ...serving.errors import ServingError
from ...serving.events import Delta, Done, Event, collect, prepend
from ..errors import APIError, status_and_message
from ..gojson import GoDecodeError, dumps
from .schema import Envelope, error_body, finish_reason, tool_calls_out, usage

SSE_TYPE = "text/event-stream"
log = logging.getLogger("vllama.api")


def _chat_chunks(envelope: Envelope, event: Event, called_tools: bool, first: bool) -> list[dict[str, Any]]:
    """One event -> OpenAI chunks (thinking and content/tool calls split in two). As the newest
    Ollama frames them, only the stream's first chunk names the role, and the end is a chunk of its
    own: an empty delta with the finish_reason (Ollama 0.24 repeated the role on every chunk and
    ended on a content chunk)."""
    role = {"role": "assistant"} if first else {}
    if isinstance(event, Done):
        choice = {"index": 0, "delta": role, "finish_reason": finish_reason(event.reason, called_tools)}
        return [envelope([choice])]
    content, thinking, logprobs = event.content, event.thinking, event.logprobs
    calls = tool_calls_out(event.tool_calls)
    extra = {"logprobs": {"content": logprobs}} if logprobs else {}
    out = []
    if thinking and (content or calls):
        out.append(envelope([{"index": 0, "delta": {**role, "content": "", "reasoning": thinking},
                              "finish_reason": None}]))
        thinking, role = "", {}
    delta: dict[str, Any] = {**role, "content": content}
    if thinking:
        delta["reasoning"] = thinking
    if calls:
        delta["tool_calls"] = calls
    out.append(envelope([{"index": 0, "delta": delta, "finish_reason": None, **extra}]))
    return out


def _completion_chunk(envelope: Envelope, event: Event, with_usage: bool) -> dict[str, Any]:
    text = event.content if isinstance(event, Delta) else ""
    choice: dict[str, Any] = {"text": text, "index": 0}
    if isinstance(event, Delta) and event.logprobs:
        choice["logprobs"] = {"content": event.logprobs}
    choice["finish_reason"] = event.reason if isinstance(event, Done) else None
    chunk = envelope([choice])
    if with_usage:
        chunk["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return chunk


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


async def _frames(envelope: Envelope, first: Event | None, rest: AsyncIterator[Event],
                  include_usage: bool) -> AsyncIterator[bytes]:
    called_tools = False
    role_due = True  # no chunk sent yet: the next one names the role

    try:
        async for event in prepend(first, rest):
            if envelope.is_chat:
                for chunk in _chat_chunks(envelope, event, called_tools, role_due):
                    called_tools = called_tools or bool(chunk["choices"][0]["delta"].get("tool_calls"))
                    role_due = False
                    yield _sse(chunk)
            else:
                yield _sse(_completion_chunk(envelope, event, include_usage))
            if isinstance(event, Done):
                if include_usage:
                    yield _sse({**envelope([]), "usage": usage(event)})
                yield b"data: [DONE]\n\n"
                return
    except Exception as err:
        # The status line is gone: an SSE error event, which the OpenAI clients raise on.
        if not isinstance(err, (APIError, ServingError, GoDecodeError)):
            log.exception("stream failed")
        yield _sse(error_body(*status_and_message(err)))


async def sse_response(model: str, is_chat: bool, events: AsyncIterator[Event],
                       include_usage: bool) -> StreamingResponse:
    """Pull the first event before answering, so that an early failure is a plain HTTP error."""
    iterator = events.__aiter__()
    try:
        first: Event | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    frames = _frames(Envelope(is_chat, model), first, iterator, include_usage)
    return StreamingResponse(frames, headers={"Content-Type": SSE_TYPE})


async def whole(model: str, is_chat: bool, events: AsyncIterator[Event]) -> dict[str, Any]:
    envelope = Envelope(is_chat, model)
    answer = await collect(events)
    done, calls = answer.done, answer.tool_calls
    extra = {"logprobs": {"content": answer.logprobs}} if answer.logprobs else {}
    if is_chat:
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.thinking:
            message["reasoning"] = answer.thinking
        if calls:
            message["tool_calls"] = tool_calls_out(calls)
        choice = {"index": 0, "message": message, "finish_reason": finish_reason(done.reason, bool(calls)), **extra}
        body = envelope([choice], "chat.completion")
    else:
        choice = {"text": answer.content, "index": 0, **extra, "finish_reason": done.reason or None}
        body = envelope([choice], "text_completion")
    body["usage"] = usage(done)
    return body
