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
from ..gojson import GoDecodeError, field, omit_empty, rfc3339, rfc3339_now

THINK_LEVELS = ("high", "medium", "low", "max")
OPTIONS_ERROR = "json: cannot unmarshal into Go struct field .options of type map[string]interface {}"

# -- requests -----------------------------------------------------------------------------------


def _keep_alive(body: dict[str, Any], default: float) -> float:
    try:
        return keep_alive_seconds(body.get("keep_alive"), default)
    except ValueError as err:
        raise BadRequest(str(err)) from None


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise GoDecodeError(OPTIONS_ERROR)
    return options or {}


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


def _common(body: dict[str, Any], default_keep_alive: float) -> dict[str, Any]:
    keep_alive = _keep_alive(body, default_keep_alive)
    top_logprobs = field(body, "top_logprobs", int, 0)
    if not 0 <= top_logprobs <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20")
    options = _options(body)
    return dict(
        model=field(body, "model", str, "").strip(),
        stream=field(body, "stream", bool, True),
        format=_format(body.get("format")),
        options=options,
        keep_alive=keep_alive,
        think=_think(body.get("think")),
        truncate=field(body, "truncate", bool, True),
        logprobs=field(body, "logprobs", bool, False),
        top_logprobs=top_logprobs,
    )


def _str_list(body: dict[str, Any], key: str) -> list[str]:
    items = field(body, key, list, [])
    if not all(isinstance(i, str) for i in items):
        raise GoDecodeError(f"json: cannot unmarshal into Go struct field .{key} of type string")
    return items


def parse_generate(body: dict[str, Any], default_keep_alive: float) -> GenerateRequest:
    context = field(body, "context", list, [])
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in context):
        raise GoDecodeError("json: cannot unmarshal into Go struct field GenerateRequest.context of type int")
    req = GenerateRequest(
        **_common(body, default_keep_alive),
        prompt=field(body, "prompt", str, ""),
        suffix=field(body, "suffix", str, ""),
        system=field(body, "system", str, ""),
        raw=field(body, "raw", bool, False),
        template=field(body, "template", str, ""),
        context=context,
        images=_str_list(body, "images"),
    )
    if req.raw and (req.template or req.system or req.context):
        raise BadRequest("raw mode does not support template, system, or context")
    return req


def _message(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise GoDecodeError("json: cannot unmarshal into Go struct field ChatRequest.messages of type api.Message")
    content = item.get("content")
    if content is not None and not isinstance(content, str):
        raise GoDecodeError("json: cannot unmarshal array into Go struct field Message.messages.content of type string")
    message = {"role": field(item, "role", str, "").lower(), "content": content or ""}
    for key in ("thinking", "tool_name", "tool_call_id"):
        if item.get(key):
            message[key] = field(item, key, str)
    if item.get("tool_calls"):
        message["tool_calls"] = field(item, "tool_calls", list)
    if item.get("images"):
        message["images"] = _str_list(item, "images")
    return message


def parse_chat(body: dict[str, Any], default_keep_alive: float) -> ChatRequest:
    tools = field(body, "tools", list, [])
    return ChatRequest(
        **_common(body, default_keep_alive),
        messages=[_message(m) for m in field(body, "messages", list, [])],
        tools=tools,
    )


def parse_embed(body: dict[str, Any], default_keep_alive: float, *, native: bool = True) -> EmbedRequest:
    """/api/embed and /api/embeddings (`native`), or /v1/embeddings (no keep_alive, options, truncate)."""
    keep_alive = _keep_alive(body, default_keep_alive) if native else default_keep_alive
    options = _options(body) if native else {}
    return EmbedRequest(
        model=field(body, "model", str, "").strip(),
        keep_alive=keep_alive,
        options=options,
        truncate=field(body, "truncate", bool, True) if native else True,
        dimensions=field(body, "dimensions", int, 0),
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
