"""Ollama's wire schema (api/types.go): every request parsed the way Ollama validates it, and every
response shape, keys in Ollama's order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...config import keep_alive_seconds
from ...engine.base import Logprob, ToolCall
from ...engine.scheduler import Loaded
from ...serving.errors import BadRequest
from ...serving.events import Done, Metrics
from ...serving.requests import ChatRequest, EmbedRequest, GenerateRequest
from ..gojson import field, json_kind, omit_empty, rfc3339, rfc3339_now, str_list, unmarshal_error

THINK_LEVELS = ("high", "medium", "low", "max")
# Go's names for the request structs (api/types.go), which its decoder's type errors carry
GENERATE, CHAT, EMBED, EMBEDDING = "GenerateRequest", "ChatRequest", "EmbedRequest", "EmbeddingRequest"
IMAGES, IMAGE = "[]api.ImageData", "api.ImageData"

# -- requests -----------------------------------------------------------------------------------


def _keep_alive(body: dict[str, Any], default: float) -> float:
    try:
        return keep_alive_seconds(body.get("keep_alive"), default)
    except ValueError as err:
        raise BadRequest(str(err)) from None


def _options(body: dict[str, Any], struct: str) -> dict[str, Any]:
    return field(body, "options", dict, {}, "map[string]interface {}", struct)


def _format(value: Any) -> str | dict[str, Any] | None:
    if value is None or value == "":
        return None
    if value == "json" or isinstance(value, dict):
        return value
    text = value if isinstance(value, str) else repr(value)
    raise BadRequest(f'invalid format: "{text}"; expected "json" or a valid JSON Schema object')


def _think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in THINK_LEVELS:
        return value.lower()
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)')


def _common(body: dict[str, Any], default_keep_alive: float, struct: str) -> dict[str, Any]:
    keep_alive = _keep_alive(body, default_keep_alive)
    top_logprobs = field(body, "top_logprobs", int, 0, struct=struct)
    if not 0 <= top_logprobs <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20")
    options = _options(body, struct)
    return dict(
        model=field(body, "model", str, "", struct=struct).strip(),
        stream=field(body, "stream", bool, True, struct=struct),
        format=_format(body.get("format")),
        options=options,
        keep_alive=keep_alive,
        think=_think(body.get("think")),
        truncate=field(body, "truncate", bool, True, struct=struct),
        logprobs=field(body, "logprobs", bool, False, struct=struct),
        top_logprobs=top_logprobs,
    )


def _context(body: dict[str, Any]) -> list[int]:
    context = field(body, "context", list, [], "[]int", GENERATE)
    for token in context:
        if not isinstance(token, int) or isinstance(token, bool):
            got = f"number {token}" if isinstance(token, float) else json_kind(token)
            raise unmarshal_error(got, f"{GENERATE}.context", "int")
        if token < 0:  # Go takes it; no tokenizer has a negative id
            raise unmarshal_error(f"number {token}", f"{GENERATE}.context", "int")
    return context


def parse_generate(body: dict[str, Any], default_keep_alive: float) -> GenerateRequest:
    context = _context(body)
    req = GenerateRequest(
        **_common(body, default_keep_alive, GENERATE),
        prompt=field(body, "prompt", str, "", struct=GENERATE),
        suffix=field(body, "suffix", str, "", struct=GENERATE),
        system=field(body, "system", str, "", struct=GENERATE),
        raw=field(body, "raw", bool, False, struct=GENERATE),
        template=field(body, "template", str, "", struct=GENERATE),
        context=context,
        images=str_list(body, "images", GENERATE, IMAGES, IMAGE),
    )
    if req.raw and (req.template or req.system or req.context):
        raise BadRequest("raw mode does not support template, system, or context")
    return req


_IN_MESSAGE = f"{CHAT}.messages"  # where Go's decoder says a message's own fields are


def _message(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise unmarshal_error(json_kind(item), _IN_MESSAGE, "api.Message")
    message = {"role": field(item, "role", str, "", struct=_IN_MESSAGE).lower(),
               "content": field(item, "content", str, "", struct=_IN_MESSAGE)}
    for key in ("thinking", "tool_name", "tool_call_id"):
        if item.get(key):
            message[key] = field(item, key, str, struct=_IN_MESSAGE)
    if item.get("tool_calls"):
        calls = field(item, "tool_calls", list, go_type="[]api.ToolCall", struct=_IN_MESSAGE)
        for call in calls:
            if not isinstance(call, dict):
                raise unmarshal_error(json_kind(call), f"{_IN_MESSAGE}.tool_calls", "api.ToolCall")
        message["tool_calls"] = calls
    if item.get("images"):
        message["images"] = str_list(item, "images", _IN_MESSAGE, IMAGES, IMAGE)
    return message


def parse_chat(body: dict[str, Any], default_keep_alive: float) -> ChatRequest:
    tools = field(body, "tools", list, [], "api.Tools", CHAT)
    for tool in tools:
        if not isinstance(tool, dict):
            raise unmarshal_error(json_kind(tool), f"{CHAT}.tools", "api.Tool")
    return ChatRequest(
        **_common(body, default_keep_alive, CHAT),
        messages=[_message(m) for m in field(body, "messages", list, [], "[]api.Message", CHAT)],
        tools=tools,
    )


def parse_embed(body: dict[str, Any], default_keep_alive: float, *, native: bool = True,
                struct: str = EMBED) -> EmbedRequest:
    """/api/embed (`native`; `struct` EmbeddingRequest for /api/embeddings, which has no truncate
    or dimensions), or /v1/embeddings (no keep_alive, options, truncate; OpenAI's EmbedRequest)."""
    keep_alive = _keep_alive(body, default_keep_alive) if native else default_keep_alive
    options = _options(body, struct) if native else {}
    legacy = struct == EMBEDDING
    return EmbedRequest(
        model=field(body, "model", str, "", struct=struct).strip(),
        keep_alive=keep_alive,
        options=options,
        truncate=field(body, "truncate", bool, True, struct=struct) if native and not legacy else True,
        dimensions=0 if legacy else field(body, "dimensions", int, 0, struct=struct),
    )


def embed_inputs(value: Any) -> list[str]:
    """EmbedRequest.input: a string ("" is no input), a list of strings, or absent."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise BadRequest("invalid input type")


# -- generate and chat responses ----------------------------------------------------------------


def tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "function": {"index": call.index, "name": call.name, "arguments": call.arguments}}


def message(content: str, thinking: str = "", tool_calls: Iterable[ToolCall] = ()) -> dict[str, Any]:
    return {"role": "assistant", "content": content,
            **omit_empty({"thinking": thinking, "tool_calls": [tool_call(c) for c in tool_calls]})}


def response(model: str, is_chat: bool, content: str = "", thinking: str = "",
             tool_calls: Iterable[ToolCall] = (), logprobs: list[Logprob] | None = None) -> dict[str, Any]:
    """A chunk of /api/chat (`message`) or /api/generate (`response`); `done` is false."""
    out: dict[str, Any] = {"model": model, "created_at": rfc3339_now()}
    if is_chat:
        out["message"] = message(content, thinking, tool_calls)
    else:
        out["response"] = content
        out.update(omit_empty({"thinking": thinking}))
    out["done"] = False
    return {**out, **omit_empty({"logprobs": logprobs})}


def metrics(m: Metrics) -> dict[str, int]:
    return {"total_duration": m.total_duration, "load_duration": m.load_duration,
            "prompt_eval_count": m.prompt_eval_count, "prompt_eval_duration": m.prompt_eval_duration,
            "eval_count": m.eval_count, "eval_duration": m.eval_duration}


def final(model: str, is_chat: bool, done: Done) -> dict[str, Any]:
    """The last chunk: done, done_reason, generate's context, and the metrics (none for load/unload)."""
    out = response(model, is_chat)
    out.update(done=True, done_reason=done.reason)
    if done.context is not None:
        out["context"] = done.context
    if done.metrics is not None:
        out.update(metrics(done.metrics))
    return out


# -- embeddings ---------------------------------------------------------------------------------


def embed_response(model: str, embeddings: list[list[float]], total_duration: int, load_duration: int,
                   prompt_eval_count: int) -> dict[str, Any]:
    return {"model": model, "embeddings": embeddings, "total_duration": total_duration,
            "load_duration": load_duration, "prompt_eval_count": prompt_eval_count}


# -- running models ----------------------------------------------------------------------------


def ps_entry(entry: Loaded) -> dict[str, Any]:
    model, runner = entry.model, entry.runner
    # What the engine holds: the weights (as it runs them) and the KV cache it allocated
    size = (entry.weights or model.size) + runner.cache_bytes
    return {
        "name": model.name, "model": model.name, "size": size, "digest": model.digest,
        "details": model.details, "expires_at": rfc3339(entry.expires_at),
        "size_vram": size if runner.on_gpu else 0,
        "context_length": runner.context_length,
    }
