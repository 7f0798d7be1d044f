"""Serving events -> Anthropic's answers: one message, or the event stream Ollama's
`StreamConverter` writes (`event: <type>` + `data: <json>` per event):

    message_start, then per block content_block_start / content_block_delta... / content_block_stop
    (thinking, then text, then one block per tool call), then message_delta (stop_reason, usage)
    and message_stop.

Ollama sends no `ping`; neither does this. An error after the first byte is an `error` event (the
Anthropic SDK raises it), where Ollama's stream would just end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from ...engine.base import ToolCall
from ...serving.errors import ServingError
from ...serving.events import Delta, Event, collect, prepend
from ..errors import APIError, status_and_message
from ..gojson import GoDecodeError, dumps
from . import schema

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
log = logging.getLogger("vllama.api")


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class StreamConverter:
    """Per request: which block is open and at what index, and what was sent."""

    def __init__(self, msg_id: str, model: str, estimated_input_tokens: int):
        self.msg_id, self.model = msg_id, model
        self.estimated = estimated_input_tokens
        self.started = False
        self.index = 0
        self.thinking_open = self.thinking_done = False
        self.text_open = False
        self.called_tools = False

    def _event(self, kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return kind, {"type": kind, **fields}

    def _stop_block(self) -> tuple[str, dict[str, Any]]:
        event = self._event("content_block_stop", index=self.index)
        self.index += 1
        return event

    def _start(self) -> list[tuple[str, dict[str, Any]]]:
        if self.started:
            return []
        self.started = True
        # the real prompt count arrives with the last event: Ollama's estimate stands in until then
        start = schema.message(self.msg_id, self.model, [], "", self.estimated, 0)
        return [self._event("message_start", message=start)]

    def _thinking(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        if self.thinking_done:
            return []
        out = []
        if not self.thinking_open:
            self.thinking_open = True
            out.append(self._event("content_block_start", index=self.index,
                                   content_block={"type": "thinking", "thinking": ""}))
        out.append(self._event("content_block_delta", index=self.index,
                               delta={"type": "thinking_delta", "thinking": text}))
        return out

    def _close_thinking(self) -> list[tuple[str, dict[str, Any]]]:
        if self.thinking_open and not self.thinking_done:
            self.thinking_done = True
            return [self._stop_block()]
        return []

    def _text(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        out = self._close_thinking()
        if not self.text_open:
            self.text_open = True
            out.append(self._event("content_block_start", index=self.index,
                                   content_block={"type": "text", "text": ""}))
        out.append(self._event("content_block_delta", index=self.index,
                               delta={"type": "text_delta", "text": text}))
        return out

    def _tool_call(self, call: ToolCall) -> list[tuple[str, dict[str, Any]]]:
        out = self._close_thinking()
        if self.text_open:
            self.text_open = False
            out.append(self._stop_block())
        block = schema.tool_use(call)
        arguments = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
        out.append(self._event("content_block_start", index=self.index, content_block={**block, "input": {}}))
        out.append(self._event("content_block_delta", index=self.index,
                               delta={"type": "input_json_delta", "partial_json": arguments}))
        out.append(self._stop_block())
        self.called_tools = True
        return out

    def process(self, event: Event) -> list[tuple[str, dict[str, Any]]]:
        out = self._start()
        if isinstance(event, Delta):
            if event.thinking:
                out += self._thinking(event.thinking)
            if event.content:
                out += self._text(event.content)
            for call in event.tool_calls:
                out += self._tool_call(call)
            return out
        if self.text_open or (self.thinking_open and not self.thinking_done):
            out.append(self._event("content_block_stop", index=self.index))
        metrics = event.metrics
        usage = {"input_tokens": metrics.prompt_eval_count if metrics else 0,
                 "output_tokens": metrics.eval_count if metrics else 0}
        delta = {"stop_reason": schema.stop_reason(event.reason, self.called_tools)}
        out.append(self._event("message_delta", delta=delta, usage=usage))
        out.append(self._event("message_stop"))
        return out


async def _frames(converter: StreamConverter, first: Event | None, rest: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    try:
        async for event in prepend(first, rest):
            for kind, data in converter.process(event):
                yield sse(kind, data)
    except Exception as err:
        if not isinstance(err, (APIError, ServingError, GoDecodeError)):
            log.exception("stream failed")
        status, message = status_and_message(err)
        error = schema.error_body(status, message)
        yield sse("error", {"type": "error", "error": error["error"]})


async def sse_response(msg_id: str, model: str, estimated_input_tokens: int,
                       events: AsyncIterator[Event]) -> StreamingResponse:
    """Pull the first event before answering, so that an early failure is a plain HTTP error."""
    iterator = events.__aiter__()
    try:
        first: Event | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    converter = StreamConverter(msg_id, model, estimated_input_tokens)
    return StreamingResponse(_frames(converter, first, iterator), headers=SSE_HEADERS)


async def whole(msg_id: str, model: str, events: AsyncIterator[Event]) -> dict[str, Any]:
    """`stream: false`: thinking, then text, then the tool calls, as ToMessagesResponse orders them."""
    answer = await collect(events)
    done, calls = answer.done, answer.tool_calls
    content: list[dict[str, Any]] = []
    if answer.thinking:
        content.append({"type": "thinking", "thinking": answer.thinking})
    if answer.content:
        content.append({"type": "text", "text": answer.content})
    content += [schema.tool_use(c) for c in calls]
    metrics = done.metrics
    return schema.message(msg_id, model, content, schema.stop_reason(done.reason, bool(calls)),
                          metrics.prompt_eval_count if metrics else 0, metrics.eval_count if metrics else 0)
