"""OpenAI's wire schema as Ollama speaks it (`openai/openai.go`): request bodies translated onto
Ollama's native ones (then parsed by the native schema, as Ollama's middleware does), and the
response shapes: completions, chunks, usage, tool calls, models, errors."""

from __future__ import annotations

import base64
import binascii
import json
import random
import string
import time
from collections.abc import Iterable
from typing import Any

from ...engine.base import ModelRecord, ToolCall
from ...models.names import InvalidName, ModelName
from ...serving.errors import BadRequest
from ...serving.events import Done
from ..gojson import go_type_name, json_kind, struct_field

FINGERPRINT = "fp_ollama"
IMAGE_TYPES = ("jpeg", "jpg", "png", "webp")
# reasoning_effort / reasoning.effort -> native `think`
EFFORTS: dict[str, bool | str] = {"none": False, "minimal": "low", "low": "low", "medium": "medium",
                                  "high": "high", "max": "max", "xhigh": "max", "ultra": "max"}


# -- requests -----------------------------------------------------------------------------------

def _stop(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise BadRequest(f"invalid type for 'stop' field: {go_type_name(item)}")
        return list(value)
    return None  # other types are ignored, as Ollama's type switch ignores them


def _decode_image_url(url: str) -> str:
    """A data URL -> the base64 payload native `images` take; remote URLs are refused."""
    if url.startswith(("http://", "https://")):
        raise BadRequest("image URLs are not currently supported, please use base64 encoded data instead")
    if url.startswith("data:;base64,"):
        data = url[len("data:;base64,"):]
    else:
        for kind in IMAGE_TYPES:
            prefix = f"data:image/{kind};base64,"
            if url.startswith(prefix):
                data = url[len(prefix):]
                break
        else:
            raise BadRequest("invalid image input")
    return _check_base64(data, "invalid image input")


def _check_base64(data: str, message: str) -> str:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(message) from None
    return data


def _tool_calls_in(calls: Any) -> list[dict[str, Any]]:
    """OpenAI tool calls (arguments as a JSON string) -> native ones (arguments as an object)."""
    if not isinstance(calls, list):
        raise BadRequest(f"json: cannot unmarshal {json_kind(calls)} into Go struct field "
                            "Message.messages.tool_calls of type []openai.ToolCall")
    out = []
    for call in calls:
        if not isinstance(call, dict):
            raise BadRequest("invalid tool call arguments")
        function = call.get("function") or {}
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                raise BadRequest("invalid tool call arguments") from None
        if not isinstance(arguments, dict):
            raise BadRequest("invalid tool call arguments")
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
            raise BadRequest(f"json: cannot unmarshal {json_kind(msg)} into Go struct field "
                                "ChatCompletionRequest.messages of type openai.Message")
        role = struct_field(msg, "role", str, "string", "Message.messages") or ""
        reasoning = struct_field(msg, "reasoning", str, "string", "Message.messages") or ""
        call_id = struct_field(msg, "tool_call_id", str, "string", "Message.messages") or ""
        tool_name = ""
        if role.lower() == "tool":
            tool_name = struct_field(msg, "name", str, "string", "Message.messages") or ""
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
            raise BadRequest(f"invalid message content type: {go_type_name(content)}")
    return out


def _part(role: str, part: Any) -> dict[str, Any]:
    """One content part -> its own native message, as Ollama splits them."""
    if not isinstance(part, dict):
        raise BadRequest("invalid message format")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest("invalid message format")
        return {"role": role, "content": text}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise BadRequest("invalid message format")
        return {"role": role, "content": "", "images": [_decode_image_url(url)]}
    if kind == "input_audio":  # Ollama hands audio to the model the way it hands images
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        if not isinstance(data, str):
            raise BadRequest("invalid message format")
        return {"role": role, "content": "", "images": [_check_base64(data, "invalid audio input")]}
    raise BadRequest("invalid message format")


def _sampling_options(body: dict[str, Any], struct: str) -> dict[str, Any]:
    """The options both endpoints share; temperature and top_p default to 1.0 here."""
    options: dict[str, Any] = {}
    stop = _stop(body.get("stop"))
    if stop is not None:
        options["stop"] = stop
    max_tokens = struct_field(body, "max_tokens", int, "int", struct)
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    temperature = struct_field(body, "temperature", float, "float64", struct)
    options["temperature"] = 1.0 if temperature is None else temperature
    seed = struct_field(body, "seed", int, "int", struct)
    if seed is not None:
        options["seed"] = seed
    return options


def _think(body: dict[str, Any]) -> bool | str | None:
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise BadRequest(f"json: cannot unmarshal {json_kind(reasoning)} into Go struct field "
                                "ChatCompletionRequest.reasoning of type openai.Reasoning")
        effort = struct_field(reasoning, "effort", str, "string", "ChatCompletionRequest.reasoning") or ""
    else:
        effort = struct_field(body, "reasoning_effort", str, "string", "ChatCompletionRequest") or ""
    if not effort:
        return None
    if effort not in EFFORTS:
        raise BadRequest(f"invalid reasoning value: '{effort}' (must be \"none\", \"minimal\", \"low\", "
                            "\"medium\", \"high\", \"xhigh\", \"max\" or \"ultra\")")
    return EFFORTS[effort]


def _format(body: dict[str, Any]) -> Any:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise BadRequest(f"json: cannot unmarshal {json_kind(fmt)} into Go struct field "
                            "ChatCompletionRequest.response_format of type openai.ResponseFormat")
    kind = (struct_field(fmt, "type", str, "string", "ChatCompletionRequest.response_format") or "").strip().lower()
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = fmt.get("json_schema")
        if isinstance(schema, dict):
            return schema.get("schema")
    return None


def stream_options(body: dict[str, Any], struct: str) -> bool:
    opts = body.get("stream_options")
    if opts is None:
        return False
    if not isinstance(opts, dict):
        raise BadRequest(f"json: cannot unmarshal {json_kind(opts)} into Go struct field "
                            f"{struct}.stream_options of type openai.StreamOptions")
    return bool(struct_field(opts, "include_usage", bool, "bool", "StreamOptions"))


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """A /v1/chat/completions body -> a native /api/chat body (openai.FromChatRequest)."""
    struct = "ChatCompletionRequest"
    options = _sampling_options(body, struct)
    for key in ("frequency_penalty", "presence_penalty"):
        value = struct_field(body, key, float, "float64", struct)
        if value is not None:
            options[key] = value
    top_p = struct_field(body, "top_p", float, "float64", struct)
    options["top_p"] = 1.0 if top_p is None else top_p
    native: dict[str, Any] = {
        "model": struct_field(body, "model", str, "string", struct) or "",
        "stream": bool(struct_field(body, "stream", bool, "bool", struct)),  # default false here
        "messages": _messages(struct_field(body, "messages", list, "[]openai.Message", struct) or []),
        "options": options,
        "format": _format(body),
        "tools": struct_field(body, "tools", list, "[]api.Tool", struct) or [],
        "think": _think(body),
        "logprobs": bool(struct_field(body, "logprobs", bool, "bool", struct)),
        "top_logprobs": struct_field(body, "top_logprobs", int, "int", struct) or 0,
    }
    return native


def completion_body(body: dict[str, Any]) -> dict[str, Any]:
    """A /v1/completions body -> a native /api/generate body (openai.FromCompleteRequest)."""
    struct = "CompletionRequest"
    options = _sampling_options(body, struct)
    for key in ("frequency_penalty", "presence_penalty"):
        options[key] = struct_field(body, key, float, "float32", struct) or 0.0
    options["top_p"] = struct_field(body, "top_p", float, "float32", struct) or 1.0  # 0 counts as unset
    logprobs = struct_field(body, "logprobs", int, "int", struct)
    native: dict[str, Any] = {
        "model": struct_field(body, "model", str, "string", struct) or "",
        "stream": bool(struct_field(body, "stream", bool, "bool", struct)),
        "prompt": struct_field(body, "prompt", str, "string", struct) or "",
        "suffix": struct_field(body, "suffix", str, "string", struct) or "",
        "options": options,
    }
    if logprobs is not None and logprobs > 0:
        native.update(logprobs=True, top_logprobs=logprobs)
    return native


# -- responses ----------------------------------------------------------------------------------

def error_type(status: int) -> str:
    return {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")


def error_body(status: int, message: str) -> dict[str, Any]:
    """`{"error": {"message", "type", "param": null, "code": null}}`."""
    return {"error": {"message": message, "type": error_type(status), "param": None, "code": None}}


def _call_id() -> str:
    return "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def tool_calls_out(calls: Iterable[ToolCall]) -> list[dict[str, Any]]:
    """Parsed tool calls -> OpenAI's, with the arguments as a JSON string (and an id if none)."""
    out = []
    for call in calls:
        out.append({
            "id": call.id or _call_id(),
            "index": call.index,
            "type": "function",
            "function": {"name": call.name,
                         "arguments": json.dumps(call.arguments or {}, ensure_ascii=False, separators=(",", ":"))},
        })
    return out


def usage(done: Done) -> dict[str, int]:
    prompt = done.metrics.prompt_eval_count if done.metrics else 0
    completion = done.metrics.eval_count if done.metrics else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason(reason: str | None, called_tools: bool) -> str | None:
    if not reason:
        return None
    return "tool_calls" if called_tools else reason


class Envelope:
    """The id, time and object type every chunk (or the whole answer) of one request shares."""

    def __init__(self, is_chat: bool, model: str):
        self.is_chat = is_chat
        self.model = model
        self.id = f"{'chatcmpl' if is_chat else 'cmpl'}-{random.randrange(999)}"
        self.created = int(time.time())
        self.object = "chat.completion.chunk" if is_chat else "text_completion"

    def __call__(self, choices: list[dict[str, Any]], obj: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": obj or self.object, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT, "choices": choices}


def owner(name: str, model: ModelRecord | None = None) -> str:
    if model is not None:
        return model.model_name.namespace
    try:
        return ModelName.parse(name).namespace
    except InvalidName:
        return ""


def created(model: ModelRecord) -> int:
    return int(model.modified_at.timestamp())


def model_entry(model_id: str, model: ModelRecord) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created(model), "owned_by": owner(model_id, model)}


def embeddings_response(model: str, data: list[Any], prompt_tokens: int) -> dict[str, Any]:
    items = [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(data)]
    return {"object": "list", "data": items, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}
