"""Typed /api/generate and /api/chat requests, validated the way Ollama validates them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import keep_alive_seconds
from .errors import APIError, field as typed

THINK_LEVELS = ("high", "medium", "low", "max")


@dataclass
class CommonRequest:
    model: str
    stream: bool
    format: str | dict | None
    options: dict[str, Any]
    keep_alive: float
    think: bool | str | None
    truncate: bool
    logprobs: bool
    top_logprobs: int


@dataclass
class GenerateRequest(CommonRequest):
    prompt: str = ""
    suffix: str = ""
    system: str = ""
    raw: bool = False
    context: list[int] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


@dataclass
class ChatRequest(CommonRequest):
    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)


def _format(value: Any) -> str | dict | None:
    if value is None or value == "":
        return None
    if value == "json" or isinstance(value, dict):
        return value
    text = value if isinstance(value, str) else repr(value)
    raise APIError(400, f'invalid format: "{text}"; expected "json" or a valid JSON Schema object')


def _think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in THINK_LEVELS:
        return value.lower()
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise APIError(400, f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)')


def _common(body: dict[str, Any], default_keep_alive: float) -> dict[str, Any]:
    try:
        keep_alive = keep_alive_seconds(body.get("keep_alive"), default_keep_alive)
    except ValueError as err:
        raise APIError(400, str(err)) from None
    top_logprobs = typed(body, "top_logprobs", int, 0)
    if not 0 <= top_logprobs <= 20:
        raise APIError(400, "top_logprobs must be between 0 and 20")
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise APIError(400, "json: cannot unmarshal into Go struct field .options of type map[string]interface {}")
    return dict(
        model=typed(body, "model", str, "").strip(),
        stream=typed(body, "stream", bool, True),
        format=_format(body.get("format")),
        options=options or {},
        keep_alive=keep_alive,
        think=_think(body.get("think")),
        truncate=typed(body, "truncate", bool, True),
        logprobs=typed(body, "logprobs", bool, False),
        top_logprobs=top_logprobs,
    )


def _str_list(body: dict[str, Any], key: str) -> list[str]:
    items = typed(body, key, list, [])
    if not all(isinstance(i, str) for i in items):
        raise APIError(400, f"json: cannot unmarshal into Go struct field .{key} of type string")
    return items


def parse_generate(body: dict[str, Any], default_keep_alive: float) -> GenerateRequest:
    context = typed(body, "context", list, [])
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in context):
        raise APIError(400, "json: cannot unmarshal into Go struct field GenerateRequest.context of type int")
    req = GenerateRequest(
        **_common(body, default_keep_alive),
        prompt=typed(body, "prompt", str, ""),
        suffix=typed(body, "suffix", str, ""),
        system=typed(body, "system", str, ""),
        raw=typed(body, "raw", bool, False),
        context=context,
        images=_str_list(body, "images"),
    )
    if req.raw and (typed(body, "template", str, "") or req.system or req.context):
        raise APIError(400, "raw mode does not support template, system, or context")
    return req


def _message(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise APIError(400, "json: cannot unmarshal into Go struct field ChatRequest.messages of type api.Message")
    content = item.get("content")
    if content is not None and not isinstance(content, str):
        raise APIError(400, "json: cannot unmarshal array into Go struct field Message.messages.content of type string")
    message = {"role": typed(item, "role", str, "").lower(), "content": content or ""}
    for key in ("thinking", "tool_name", "tool_call_id"):
        if item.get(key):
            message[key] = typed(item, key, str)
    if item.get("tool_calls"):
        message["tool_calls"] = typed(item, "tool_calls", list)
    if item.get("images"):
        message["images"] = _str_list(item, "images")
    return message


def parse_chat(body: dict[str, Any], default_keep_alive: float) -> ChatRequest:
    tools = typed(body, "tools", list, [])
    return ChatRequest(
        **_common(body, default_keep_alive),
        messages=[_message(m) for m in typed(body, "messages", list, [])],
        tools=tools,
    )
