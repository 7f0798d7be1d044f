"""`/v1/responses` (OpenAI's Responses API, stateless, as Ollama serves it): events -> one Response
object, or the event stream Ollama's `ResponsesStreamConverter` writes:

    response.created, response.in_progress,
    [reasoning]  output_item.added, reasoning_summary_text.delta..., reasoning_summary_text.done, output_item.done
    [text]       output_item.added, content_part.added, output_text.delta..., output_text.done,
                 content_part.done, output_item.done
    [tool calls] per call: output_item.added, function_call_arguments.delta/.done, output_item.done
    response.completed

Each frame is `event: <type>` + `data: <json>`; Go marshals these payloads from maps, so their keys
come sorted. Every payload carries a `sequence_number`. An error after the first byte is an
`error` event (the OpenAI SDK raises it), where Ollama's stream would just end.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...engine.base import ToolCall
from ...serving.errors import ServingError
from ...serving.events import Done, Event, collect, prepend
from ..disconnect import until_disconnect
from ..errors import APIError, middleware, read_raw, status_and_message
from ..gojson import GoDecodeError, decode_object
from ..http import serving
from . import responses_schema as rs
from .routes import _events, openai_errors, openai_json, read_body
from .schema import error_type, tool_calls_out

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
log = logging.getLogger("vllama.api")


def _sorted_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class StreamConverter:
    """Per request: the output items begun, the text and thinking so far, the sequence number."""

    def __init__(self, req: rs.ResponsesRequest):
        self.req = req
        self.sequence = 0
        self.started = False
        self.output_index = 0
        self.text_started = False
        self.text = ""
        self.thinking = ""
        self.reasoning_id = ""
        self.reasoning_done = False
        self.call_items: list[dict[str, Any]] = []

    def _event(self, kind: str, **data: Any) -> tuple[str, dict[str, Any]]:
        event = (kind, {**data, "type": kind, "sequence_number": self.sequence})
        self.sequence += 1
        return event

    def _thinking(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        out = []
        if not self.reasoning_id:
            self.reasoning_id = f"rs_{random.randrange(999999)}"
            out.append(self._event("response.output_item.added", output_index=self.output_index,
                                   item={"id": self.reasoning_id, "type": "reasoning", "summary": []}))
        self.thinking += text
        out.append(self._event("response.reasoning_summary_text.delta", item_id=self.reasoning_id,
                               output_index=self.output_index, summary_index=0, delta=text))
        return out

    def _finish_reasoning(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.reasoning_id or self.reasoning_done:
            return []
        self.reasoning_done = True
        out = [
            self._event("response.reasoning_summary_text.done", item_id=self.reasoning_id,
                        output_index=self.output_index, summary_index=0, text=self.thinking),
            self._event("response.output_item.done", output_index=self.output_index,
                        item=rs.reasoning_item(self.reasoning_id, self.thinking)),
        ]
        self.output_index += 1
        return out

    def _tool_calls(self, calls: list[ToolCall]) -> list[tuple[str, dict[str, Any]]]:
        out = self._finish_reasoning()
        for i, call in enumerate(tool_calls_out(calls)):
            item_id = f"fc_{random.randrange(999999)}_{i}"
            function, index = call["function"], self.output_index + i
            done = rs.function_call_item(item_id, call["id"], function["name"], function["arguments"])
            self.call_items.append(done)
            out.append(self._event("response.output_item.added", output_index=index,
                                   item={**done, "status": "in_progress", "arguments": ""}))
            if function["arguments"]:
                out.append(self._event("response.function_call_arguments.delta", item_id=item_id,
                                       output_index=index, delta=function["arguments"]))
            out.append(self._event("response.function_call_arguments.done", item_id=item_id,
                                   output_index=index, arguments=function["arguments"]))
            out.append(self._event("response.output_item.done", output_index=index, item=done))
        return out

    def _content(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        out = self._finish_reasoning()
        item_id = self.req.item_id
        if not self.text_started:
            self.text_started = True
            out.append(self._event("response.output_item.added", output_index=self.output_index,
                                   item={**rs.message_item(item_id, "", "in_progress"), "content": []}))
            out.append(self._event("response.content_part.added", item_id=item_id, output_index=self.output_index,
                                   content_index=0, part=rs.output_text("")))
        self.text += text
        out.append(self._event("response.output_text.delta", item_id=item_id, output_index=self.output_index,
                               content_index=0, delta=text, logprobs=[]))
        return out

    def _final_output(self) -> list[dict[str, Any]]:
        output = [rs.reasoning_item(self.reasoning_id, self.thinking)] if self.reasoning_id else []
        if self.call_items:
            return output + self.call_items
        if self.text_started:
            output.append(rs.message_item(self.req.item_id, self.text))
        return output

    def _completion(self, done: Done) -> list[tuple[str, dict[str, Any]]]:
        out = self._finish_reasoning()
        item_id = self.req.item_id
        if not self.call_items and self.text_started:
            out.append(self._event("response.output_text.done", item_id=item_id, output_index=self.output_index,
                                   content_index=0, text=self.text, logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=item_id, output_index=self.output_index,
                                   content_index=0, part=rs.output_text(self.text)))
            out.append(self._event("response.output_item.done", output_index=self.output_index,
                                   item=rs.message_item(item_id, self.text)))
        metrics = done.metrics
        used = rs.usage(metrics.prompt_eval_count if metrics else 0, metrics.eval_count if metrics else 0)
        now = int(time.time())
        out.append(self._event("response.completed", response=rs.response_object(
            self.req, "completed", self._final_output(), used, completed_at=now)))
        return out

    def process(self, event: Event) -> list[tuple[str, dict[str, Any]]]:
        out = []
        if not self.started:
            self.started = True
            for kind in ("response.created", "response.in_progress"):
                out.append(self._event(kind, response=rs.response_object(self.req, "in_progress", [], None)))
        if isinstance(event, Done):
            return out + self._completion(event)
        if event.thinking:
            out += self._thinking(event.thinking)
        if event.tool_calls:
            out += self._tool_calls(event.tool_calls)
        elif event.content and not self.call_items:  # text after tool calls is dropped, as Ollama drops it
            out += self._content(event.content)
        return out

    def error(self, err: Exception) -> tuple[str, dict[str, Any]]:
        status, message = status_and_message(err)
        return self._event("error", code=error_type(status), message=message, param=None)


def _frame(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _sorted_json(data) + b"\n\n"


async def _frames(converter: StreamConverter, first: Event | None, rest: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    try:
        async for event in prepend(first, rest):
            for kind, data in converter.process(event):
                yield _frame(kind, data)
    except Exception as err:
        if not isinstance(err, (APIError, ServingError, GoDecodeError)):
            log.exception("stream failed")
        yield _frame(*converter.error(err))


async def sse_response(req: rs.ResponsesRequest, events: AsyncIterator[Event]) -> StreamingResponse:
    """Pull the first event before answering, so that an early failure is a plain HTTP error."""
    iterator = events.__aiter__()
    try:
        first: Event | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    return StreamingResponse(_frames(StreamConverter(req), first, iterator), headers=SSE_HEADERS)


async def whole(req: rs.ResponsesRequest, events: AsyncIterator[Event]) -> dict[str, Any]:
    """`stream: false`: reasoning, then the function calls or else the message (ToResponse)."""
    answer = await collect(events)
    done, calls = answer.done, answer.tool_calls
    rid = req.response_id
    output = [rs.reasoning_item(f"rs_{rid}", answer.thinking)] if answer.thinking else []
    if calls:
        output += [rs.function_call_item(f"fc_{rid}_{i}", c["id"], c["function"]["name"], c["function"]["arguments"])
                   for i, c in enumerate(tool_calls_out(calls))]
    else:
        output.append(rs.message_item(req.item_id, answer.content))
    metrics = done.metrics
    used = rs.usage(metrics.prompt_eval_count if metrics else 0, metrics.eval_count if metrics else 0)
    now = int(time.time())
    return rs.response_object(req, "completed", output, used, created_at=now, completed_at=now)


MAX_DECOMPRESSED_BYTES = 20 << 20  # Ollama's limit on a zstd body once decompressed


async def _body(request: Request) -> dict[str, Any]:
    """The JSON body; Codex sends it zstd-compressed (`Content-Encoding: zstd`), as Ollama accepts."""
    if request.headers.get("content-encoding", "").lower() != "zstd":
        return await read_body(request)
    import zstandard  # only this route reads compressed bodies

    try:
        reader = zstandard.ZstdDecompressor().stream_reader(await read_raw(request))
        raw = reader.read(MAX_DECOMPRESSED_BYTES + 1)
    except zstandard.ZstdError:
        raise APIError(400, "failed to decompress zstd body") from None
    if len(raw) > MAX_DECOMPRESSED_BYTES:
        raise APIError(400, "http: request body too large")
    if not raw.strip():
        raise APIError(400, "EOF")
    return decode_object(raw)


@openai_errors
async def responses(request: Request) -> Response:
    with middleware():  # the body and its conversion to a chat request: the middleware's refusals
        body = await _body(request)
        req = rs.parse(body, serving(request).default_keep_alive)

    async def run() -> Response:
        events = _events(request, req.chat)  # no input at all: Ollama's load answer, as on chat
        if req.chat.stream:
            return await sse_response(req, events)
        return openai_json(await whole(req, events))

    return await until_disconnect(request, run())


ROUTES = [Route("/v1/responses", responses, methods=["POST"])]
