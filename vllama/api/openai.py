"""OpenAI-compatible routes (`/v1/...`), translated onto the native generate/chat path the way
Ollama's middleware (`middleware/openai.go`, `openai/openai.go`) translates them.

A request body is turned into a native `/api/chat` or `/api/generate` body dict, parsed by the
native schemas and run through `generate.open_stream`; the native chunks are then rewritten into
OpenAI's shapes. Errors keep Ollama's status codes in OpenAI's `{"error": {...}}` envelope.

Other `/v1` endpoints (e.g. embeddings) can reuse `openai_error` and `openai_errors`, and join
`ROUTES` (or be listed next to it in the app).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import random
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..models.names import InvalidName, ModelName
from ..models.store import ModelNotFound
from .disconnect import until_disconnect
from .errors import APIError, dumps, parse_json, read_raw
from .generate import Job, _resolve, open_stream
from .schemas import ChatRequest, CommonRequest, parse_chat, parse_generate

log = logging.getLogger("vllama.api")

OPENAI_JSON = "application/json"  # Ollama's /v1 answers carry no charset
SSE_TYPE = "text/event-stream"
FINGERPRINT = "fp_ollama"
IMAGE_TYPES = ("jpeg", "jpg", "png", "webp")
# reasoning_effort / reasoning.effort -> native `think`
EFFORTS: dict[str, bool | str] = {"none": False, "minimal": "low", "low": "low", "medium": "medium",
                                  "high": "high", "max": "max", "xhigh": "max", "ultra": "max"}

Handler = Callable[[Request], Awaitable[Response]]


# -- errors -----------------------------------------------------------------------------------

def error_type(status: int) -> str:
    return {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "param": None, "code": None}}


def openai_json(obj: Any, status: int = 200) -> Response:
    # Go's json.Encoder ends the body with a newline
    return Response(dumps(obj) + b"\n", status_code=status, media_type=OPENAI_JSON)


def openai_error(status: int, message: str) -> Response:
    """`{"error": {"message", "type", "param": null, "code": null}}` with the native status."""
    return openai_json(error_body(status, message), status)


def openai_errors(handler: Handler) -> Handler:
    """Answer APIError (and anything unexpected) in OpenAI's error shape instead of Ollama's."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except APIError as err:
            return openai_error(err.status, err.message)
        except Exception as err:  # noqa: BLE001 - the server stays up, the client gets a 500
            log.exception("unhandled error on %s", request.url.path)
            return openai_error(500, str(err) or type(err).__name__)

    return wrapped


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON body; gin's ShouldBindJSON says `EOF` for an empty one."""
    raw = await read_raw(request)
    if not raw.strip():
        raise APIError(400, "EOF")
    return parse_json(raw)


# -- request translation ------------------------------------------------------------------------

_GO_KINDS = {str: "string", bool: "bool", list: "array", dict: "object"}


def _go_kind(value: Any) -> str:
    return _GO_KINDS.get(type(value), "number")


def _get(body: dict[str, Any], key: str, kind: type, go_type: str, struct: str) -> Any:
    """A typed field (None when absent or null); a wrong JSON type is a 400 in Go's words."""
    value = body.get(key)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 1e300:  # float() overflows: Go's decoder refuses such a number too
            raise APIError(400, f"json: cannot unmarshal number into Go struct field {struct}.{key} of type {go_type}")
        return float(value)
    if ok:
        return value
    if kind is int and isinstance(value, float):
        got = f"number {value}"
    else:
        got = _go_kind(value)
    raise APIError(400, f"json: cannot unmarshal {got} into Go struct field {struct}.{key} of type {go_type}")


def _go_type_name(value: Any) -> str:
    """Go's %T of a decoded JSON value (for `invalid type for 'stop' field: %T`)."""
    if value is None:
        return "<nil>"
    return {str: "string", bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}.get(
        type(value), "float64")


def _stop(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise APIError(400, f"invalid type for 'stop' field: {_go_type_name(item)}")
        return list(value)
    return None  # other types are ignored, as Ollama's type switch ignores them


def _decode_image_url(url: str) -> str:
    """A data URL -> the base64 payload native `images` take; remote URLs are refused."""
    if url.startswith(("http://", "https://")):
        raise APIError(400, "image URLs are not currently supported, please use base64 encoded data instead")
    if url.startswith("data:;base64,"):
        data = url[len("data:;base64,"):]
    else:
        for kind in IMAGE_TYPES:
            prefix = f"data:image/{kind};base64,"
            if url.startswith(prefix):
                data = url[len(prefix):]
                break
        else:
            raise APIError(400, "invalid image input")
    return _check_base64(data, "invalid image input")


def _check_base64(data: str, message: str) -> str:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, message) from None
    return data


def _tool_calls_in(calls: Any) -> list[dict[str, Any]]:
    """OpenAI tool calls (arguments as a JSON string) -> native ones (arguments as an object)."""
    if not isinstance(calls, list):
        raise APIError(400, f"json: cannot unmarshal {_go_kind(calls)} into Go struct field "
                            "Message.messages.tool_calls of type []openai.ToolCall")
    out = []
    for call in calls:
        if not isinstance(call, dict):
            raise APIError(400, "invalid tool call arguments")
        function = call.get("function") or {}
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                raise APIError(400, "invalid tool call arguments") from None
        if not isinstance(arguments, dict):
            raise APIError(400, "invalid tool call arguments")
        native: dict[str, Any] = {"function": {"name": function.get("name") or "", "arguments": arguments}}
        if call.get("id"):
            native = {"id": str(call["id"]), **native}
        out.append(native)
    return out


def _name_from_tool_call_id(messages: list[Any], call_id: str) -> str:
    """The function name of an earlier assistant tool call with this id (the last one wins)."""
    for message in reversed(messages):
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and call.get("id") == call_id:
                function = call.get("function") or {}
                return function.get("name", "") if isinstance(function, dict) else ""
    return ""


def _messages(raw: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for msg in raw:
        if not isinstance(msg, dict):
            raise APIError(400, f"json: cannot unmarshal {_go_kind(msg)} into Go struct field "
                                "ChatCompletionRequest.messages of type openai.Message")
        role = _get(msg, "role", str, "string", "Message.messages") or ""
        reasoning = _get(msg, "reasoning", str, "string", "Message.messages") or ""
        call_id = _get(msg, "tool_call_id", str, "string", "Message.messages") or ""
        tool_name = ""
        if role.lower() == "tool":
            tool_name = _get(msg, "name", str, "string", "Message.messages") or ""
            if not tool_name and call_id:
                tool_name = _name_from_tool_call_id(raw, call_id)
        has_calls = msg.get("tool_calls") is not None
        calls = _tool_calls_in(msg["tool_calls"]) if has_calls else []
        extra: dict[str, Any] = {}
        if reasoning:
            extra["thinking"] = reasoning
        if calls:
            extra["tool_calls"] = calls
        if tool_name:
            extra["tool_name"] = tool_name
        if call_id:
            extra["tool_call_id"] = call_id
        content = msg.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content, **extra})
        elif isinstance(content, list):
            parts = [_part(role, part) for part in content]
            if parts:
                parts[-1].update(extra)  # tool calls and the like go on the last message
            out.extend(parts)
        elif has_calls:  # content is optional only next to tool calls
            out.append({"role": role, "content": "", **extra})
        else:
            raise APIError(400, f"invalid message content type: {_go_type_name(content)}")
    return out


def _part(role: str, part: Any) -> dict[str, Any]:
    """One content part -> its own native message, as Ollama splits them."""
    if not isinstance(part, dict):
        raise APIError(400, "invalid message format")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise APIError(400, "invalid message format")
        return {"role": role, "content": text}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise APIError(400, "invalid message format")
        return {"role": role, "content": "", "images": [_decode_image_url(url)]}
    if kind == "input_audio":  # Ollama hands audio to the model the way it hands images
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        if not isinstance(data, str):
            raise APIError(400, "invalid message format")
        return {"role": role, "content": "", "images": [_check_base64(data, "invalid audio input")]}
    raise APIError(400, "invalid message format")


def _sampling_options(body: dict[str, Any], struct: str) -> dict[str, Any]:
    """The options both endpoints share; temperature and top_p default to 1.0 here."""
    options: dict[str, Any] = {}
    stop = _stop(body.get("stop"))
    if stop is not None:
        options["stop"] = stop
    max_tokens = _get(body, "max_tokens", int, "int", struct)
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    temperature = _get(body, "temperature", float, "float64", struct)
    options["temperature"] = 1.0 if temperature is None else temperature
    seed = _get(body, "seed", int, "int", struct)
    if seed is not None:
        options["seed"] = seed
    return options


def _think(body: dict[str, Any]) -> bool | str | None:
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise APIError(400, f"json: cannot unmarshal {_go_kind(reasoning)} into Go struct field "
                                "ChatCompletionRequest.reasoning of type openai.Reasoning")
        effort = _get(reasoning, "effort", str, "string", "ChatCompletionRequest.reasoning") or ""
    else:
        effort = _get(body, "reasoning_effort", str, "string", "ChatCompletionRequest") or ""
    if not effort:
        return None
    if effort not in EFFORTS:
        raise APIError(400, f"invalid reasoning value: '{effort}' (must be \"none\", \"minimal\", \"low\", "
                            "\"medium\", \"high\", \"xhigh\", \"max\" or \"ultra\")")
    return EFFORTS[effort]


def _format(body: dict[str, Any]) -> Any:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise APIError(400, f"json: cannot unmarshal {_go_kind(fmt)} into Go struct field "
                            "ChatCompletionRequest.response_format of type openai.ResponseFormat")
    kind = (_get(fmt, "type", str, "string", "ChatCompletionRequest.response_format") or "").strip().lower()
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = fmt.get("json_schema")
        if isinstance(schema, dict):
            return schema.get("schema")
    return None


def _stream_options(body: dict[str, Any], struct: str) -> bool:
    opts = body.get("stream_options")
    if opts is None:
        return False
    if not isinstance(opts, dict):
        raise APIError(400, f"json: cannot unmarshal {_go_kind(opts)} into Go struct field "
                            f"{struct}.stream_options of type openai.StreamOptions")
    return bool(_get(opts, "include_usage", bool, "bool", "StreamOptions"))


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """A /v1/chat/completions body -> a native /api/chat body (openai.FromChatRequest)."""
    struct = "ChatCompletionRequest"
    options = _sampling_options(body, struct)
    for key in ("frequency_penalty", "presence_penalty"):
        value = _get(body, key, float, "float64", struct)
        if value is not None:
            options[key] = value
    top_p = _get(body, "top_p", float, "float64", struct)
    options["top_p"] = 1.0 if top_p is None else top_p
    native: dict[str, Any] = {
        "model": _get(body, "model", str, "string", struct) or "",
        "stream": bool(_get(body, "stream", bool, "bool", struct)),  # default false here
        "messages": _messages(_get(body, "messages", list, "[]openai.Message", struct) or []),
        "options": options,
        "format": _format(body),
        "tools": _get(body, "tools", list, "[]api.Tool", struct) or [],
        "think": _think(body),
        "logprobs": bool(_get(body, "logprobs", bool, "bool", struct)),
        "top_logprobs": _get(body, "top_logprobs", int, "int", struct) or 0,
    }
    return native


def completion_body(body: dict[str, Any]) -> dict[str, Any]:
    """A /v1/completions body -> a native /api/generate body (openai.FromCompleteRequest)."""
    struct = "CompletionRequest"
    options = _sampling_options(body, struct)
    for key in ("frequency_penalty", "presence_penalty"):
        options[key] = _get(body, key, float, "float32", struct) or 0.0
    options["top_p"] = _get(body, "top_p", float, "float32", struct) or 1.0  # 0 counts as unset
    logprobs = _get(body, "logprobs", int, "int", struct)
    native: dict[str, Any] = {
        "model": _get(body, "model", str, "string", struct) or "",
        "stream": bool(_get(body, "stream", bool, "bool", struct)),
        "prompt": _get(body, "prompt", str, "string", struct) or "",
        "suffix": _get(body, "suffix", str, "string", struct) or "",
        "options": options,
    }
    if logprobs is not None and logprobs > 0:
        native.update(logprobs=True, top_logprobs=logprobs)
    return native


# -- response translation -----------------------------------------------------------------------

def _call_id() -> str:
    return "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def tool_calls_out(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Native tool calls -> OpenAI's, with the arguments as a JSON string."""
    out = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        out.append({
            "id": call.get("id") or _call_id(),
            "index": function.get("index", i),
            "type": "function",
            "function": {"name": function.get("name", ""),
                         "arguments": json.dumps(function.get("arguments") or {}, ensure_ascii=False,
                                                 separators=(",", ":"))},
        })
    return out


def usage(final: dict[str, Any]) -> dict[str, int]:
    prompt = final.get("prompt_eval_count") or 0
    completion = final.get("eval_count") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish(reason: str | None, called_tools: bool) -> str | None:
    if not reason:
        return None
    return "tool_calls" if called_tools else reason


class _Stream:
    """Per-request state shared by the streamed and whole answers."""

    def __init__(self, is_chat: bool, model: str):
        self.is_chat = is_chat
        self.model = model
        self.id = f"{'chatcmpl' if is_chat else 'cmpl'}-{random.randrange(999)}"
        self.created = int(time.time())
        self.object = "chat.completion.chunk" if is_chat else "text_completion"

    def envelope(self, choices: list[dict[str, Any]], obj: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": obj or self.object, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT, "choices": choices}


def _chat_chunks(state: _Stream, native: dict[str, Any], called_tools: bool) -> list[dict[str, Any]]:
    """One native chat chunk -> OpenAI chunks (thinking and content/tool calls split in two)."""
    message = native.get("message") or {}
    content = message.get("content") or ""
    thinking = message.get("thinking") or ""
    calls = tool_calls_out(message.get("tool_calls") or [])
    finish = _finish(native.get("done_reason"), called_tools or bool(calls)) if native.get("done") else None
    logprobs = {"logprobs": {"content": native["logprobs"]}} if native.get("logprobs") else {}
    out = []
    if thinking and (content or calls or finish):
        out.append(state.envelope([{"index": 0, "delta": {"role": "assistant", "content": "",
                                                          "reasoning": thinking}, "finish_reason": None}]))
        thinking = ""
    delta: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        delta["reasoning"] = thinking
    if calls:
        delta["tool_calls"] = calls
    out.append(state.envelope([{"index": 0, "delta": delta, "finish_reason": finish, **logprobs}]))
    return out


def _completion_chunk(state: _Stream, native: dict[str, Any], with_usage: bool) -> dict[str, Any]:
    finish = native.get("done_reason") if native.get("done") else None
    choice: dict[str, Any] = {"text": native.get("response") or "", "index": 0}
    if native.get("logprobs"):
        choice["logprobs"] = {"content": native["logprobs"]}
    choice["finish_reason"] = finish or None
    chunk = state.envelope([choice])
    if with_usage:
        chunk["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return chunk


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


async def _sse_frames(state: _Stream, chunks: AsyncIterator[dict[str, Any]],
                      include_usage: bool) -> AsyncIterator[bytes]:
    called_tools = False
    try:
        async for native in chunks:
            if state.is_chat:
                for chunk in _chat_chunks(state, native, called_tools):
                    called_tools = called_tools or bool(chunk["choices"][0]["delta"].get("tool_calls"))
                    yield _sse(chunk)
            else:
                yield _sse(_completion_chunk(state, native, include_usage))
            if native.get("done"):
                if include_usage:
                    yield _sse({**state.envelope([]), "usage": usage(native)})
                yield b"data: [DONE]\n\n"
                return
    except APIError as err:
        # The status line is gone: an SSE error event, which the OpenAI clients raise on.
        yield _sse(error_body(err.status, err.message))
    except Exception as err:  # noqa: BLE001
        log.exception("stream failed")
        yield _sse(error_body(500, str(err) or type(err).__name__))


async def _prepend(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


async def _native_chunks(request: Request, req: CommonRequest, is_chat: bool) -> AsyncIterator[dict[str, Any]]:
    """The native chunks, or for an empty conversation/prompt a single `load` answer as Ollama
    gives one (after loading the model)."""
    empty = not req.messages if isinstance(req, ChatRequest) else not req.prompt
    if not empty:
        return await open_stream(request, req, is_chat)
    job = Job(request, req)
    model = _resolve(job, is_chat)
    await job.load(model)
    job.release()
    final: dict[str, Any] = {"model": req.model, "done": True, "done_reason": "load"}
    final.update({"message": {"role": "assistant", "content": ""}} if is_chat else {"response": ""})

    async def one() -> AsyncIterator[dict[str, Any]]:
        yield final

    return one()


async def _stream_answer(request: Request, req: CommonRequest, is_chat: bool, include_usage: bool) -> Response:
    chunks = await _native_chunks(request, req, is_chat)
    iterator = chunks.__aiter__()
    try:  # pull the first chunk first, so that an early failure is a plain HTTP error
        first = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    state = _Stream(is_chat, req.model)
    frames = _sse_frames(state, _prepend(first, iterator), include_usage)
    return StreamingResponse(frames, headers={"Content-Type": SSE_TYPE})


async def _whole_answer(request: Request, req: CommonRequest, is_chat: bool) -> Response:
    state = _Stream(is_chat, req.model)
    content: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    logprobs: list[Any] = []
    final: dict[str, Any] = {}
    async for native in await _native_chunks(request, req, is_chat):
        part = (native.get("message") or {}) if is_chat else native
        content.append(part.get("content" if is_chat else "response") or "")
        thinking.append(part.get("thinking") or "")
        calls += part.get("tool_calls") or []
        logprobs += native.get("logprobs") or []
        final = native
    extra = {"logprobs": {"content": logprobs}} if logprobs else {}
    if is_chat:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if any(thinking):
            message["reasoning"] = "".join(thinking)
        if calls:
            message["tool_calls"] = tool_calls_out(calls)
        choice = {"index": 0, "message": message, "finish_reason": _finish(final.get("done_reason"), bool(calls)),
                  **extra}
        body = state.envelope([choice], "chat.completion")
    else:
        choice = {"text": "".join(content), "index": 0, **extra, "finish_reason": final.get("done_reason") or None}
        body = state.envelope([choice], "text_completion")
    body["usage"] = usage(final)
    return openai_json(body)


async def _answer(request: Request, req: CommonRequest, is_chat: bool, include_usage: bool) -> Response:
    if req.stream:
        handler = _stream_answer(request, req, is_chat, include_usage)
    else:
        handler = _whole_answer(request, req, is_chat)
    return await until_disconnect(request, handler)


# -- routes -------------------------------------------------------------------------------------

@openai_errors
async def chat_completions(request: Request) -> Response:
    body = await read_body(request)
    struct = "ChatCompletionRequest"
    if not _get(body, "messages", list, "[]openai.Message", struct):
        raise APIError(400, "[] is too short - 'messages'")
    include_usage = _stream_options(body, struct)
    req = parse_chat(chat_body(body), request.app.state.default_keep_alive)
    return await _answer(request, req, True, include_usage)


@openai_errors
async def completions(request: Request) -> Response:
    body = await read_body(request)
    include_usage = _stream_options(body, "CompletionRequest")
    req = parse_generate(completion_body(body), request.app.state.default_keep_alive)
    return await _answer(request, req, False, include_usage)


def _owner(name: str, model: Any = None) -> str:
    parsed = getattr(model, "model_name", None)
    if parsed is None:
        try:
            parsed = ModelName.parse(name)
        except InvalidName:
            return ""
    return parsed.namespace


def _created(model: Any) -> int:
    modified = getattr(model, "modified_at", None)
    return int(modified.timestamp()) if modified is not None else 0


def model_entry(model_id: str, model: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _created(model), "owned_by": _owner(model_id, model)}


@openai_errors
async def list_models(request: Request) -> Response:
    models = await asyncio.to_thread(request.app.state.store.list)
    # Ollama writes `"data": null` when there are no models; an empty list is what clients expect.
    return openai_json({"object": "list", "data": [model_entry(m.name, m) for m in models]})


@openai_errors
async def retrieve_model(request: Request) -> Response:
    model_id = request.path_params["model"]
    try:
        name = ModelName.parse(model_id)
    except InvalidName:
        raise APIError(400, "invalid model name") from None
    try:
        model = await asyncio.to_thread(request.app.state.store.get, model_id)
    except ModelNotFound:
        raise APIError(404, f"model '{model_id}' not found") from None  # as sent, like /api/show
    # the id and its namespace as written, like Ollama's RetrieveMiddleware
    return openai_json({"id": model_id, "object": "model", "created": _created(model), "owned_by": name.namespace})


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
    # /v1/embeddings lives with the embedding routes; wrap its handler in `openai_errors`.
]

__all__ = ["ROUTES", "openai_error", "openai_errors", "openai_json", "read_body", "chat_body", "completion_body"]
