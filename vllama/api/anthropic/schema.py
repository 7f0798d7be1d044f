"""Anthropic's Messages wire schema as Ollama speaks it (`anthropic/anthropic.go`): a request body
translated onto a native chat request (`FromMessagesRequest`), and the response shapes: the
message, its content blocks, usage, stop reasons and errors.

vLLM ships pydantic models of this API (`vllm.entrypoints.anthropic.protocol`); they validate
differently from Ollama (pydantic's messages, stricter types, no Go decoder wording) and import the
engine, so the body is read here the way Ollama's Go structs read it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from ...engine.base import ToolCall
from ...serving.errors import BadRequest
from ...serving.requests import ChatRequest
from ..gojson import dumps, json_kind, struct_field, unmarshal_error

STRUCT = "MessagesRequest"
THINK_LEVELS = ("high", "medium", "low", "max")
# Anthropic's built-in web search reaches Ollama's models as this function (convertTool).
WEB_SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web for current information. Use this to find up-to-date information "
                       "about any topic.",
        "parameters": {"type": "object", "required": ["query"],
                       "properties": {"query": {"type": "string",
                                                "description": "The search query to look up on the web"}}},
    },
}


@dataclass
class MessagesRequest:
    """What the answer needs besides the events: the request as parsed, for the renderers."""

    chat: ChatRequest
    estimated_input_tokens: int
    tools: list[dict[str, Any]] = field(default_factory=list)


# -- requests -----------------------------------------------------------------------------------


def _text_of(blocks: list[Any]) -> str:
    return "".join(b["text"] for b in blocks
                   if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))


def _system(value: Any) -> str:
    """A string, or text blocks concatenated (other blocks are ignored, as Ollama ignores them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _text_of(value)
    return ""


def _image(source: Any) -> str:
    """A base64 image source -> the base64 payload native `images` carry."""
    if not isinstance(source, dict):
        raise BadRequest("invalid image source")
    kind = source.get("type")
    if kind != "base64":
        raise BadRequest(f"invalid image source type: {kind if isinstance(kind, str) else ''}. "
                         "Only base64 images are supported.")
    data = source.get("data")
    data = data if isinstance(data, str) else ""
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BadRequest(f"invalid base64 image data: {err}") from None
    return data


def _tool_result(content: Any) -> tuple[str, list[str]]:
    """A tool_result's content: a string, or text and image blocks."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return "", []
    text, images = [], []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text.append(block["text"])
        elif block.get("type") == "image":
            if not isinstance(block.get("source"), dict):
                raise BadRequest("invalid tool_result image source")
            images.append(_image(block["source"]))
    return "".join(text), images


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A message's content: a string is one text block; otherwise a list of block objects."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content is None:
        return []
    if not isinstance(content, list):
        raise unmarshal_error(json_kind(content), f"{STRUCT}.messages.content", "[]anthropic.ContentBlock")
    for block in content:
        if not isinstance(block, dict):
            raise unmarshal_error(json_kind(block), f"{STRUCT}.messages.content", "anthropic.ContentBlock")
    return content


def _message(raw: Any) -> list[dict[str, Any]]:
    """One Anthropic message -> native messages (convertMessage): tool results become `tool`
    messages (before the user's text, after an assistant's), everything else one message."""
    if not isinstance(raw, dict):
        raise unmarshal_error(json_kind(raw), f"{STRUCT}.messages", "anthropic.MessageParam")
    role = (struct_field(raw, "role", str, "string", f"{STRUCT}.messages") or "").lower()
    text: list[str] = []
    images: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking = ""
    results: list[dict[str, Any]] = []
    for block in _blocks(raw.get("content")):
        kind = block.get("type")
        if kind == "text":
            if isinstance(block.get("text"), str):
                text.append(block["text"])
        elif kind == "image":
            if block.get("source") is None:
                raise BadRequest("invalid image source")
            images.append(_image(block["source"]))
        elif kind in ("tool_use", "server_tool_use"):
            if kind == "tool_use" and not block.get("id"):
                raise BadRequest("tool_use block missing required 'id' field")
            if kind == "tool_use" and not block.get("name"):
                raise BadRequest("tool_use block missing required 'name' field")
            arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
            calls.append({"id": str(block.get("id") or ""),
                          "function": {"name": str(block.get("name") or ""), "arguments": arguments}})
        elif kind in ("tool_result", "web_search_tool_result"):
            result, result_images = _tool_result(block.get("content"))
            if kind == "web_search_tool_result" and not isinstance(block.get("content"), str):
                result = dumps(block.get("content")).decode()
            message: dict[str, Any] = {"role": "tool", "content": result}
            if result_images:
                message["images"] = result_images
            if block.get("tool_use_id"):
                message["tool_call_id"] = str(block["tool_use_id"])
            results.append(message)
        elif kind == "thinking":
            if isinstance(block.get("thinking"), str):
                thinking = block["thinking"]
        # other blocks (redacted_thinking, documents ...) are skipped, as Ollama skips them
    out: list[dict[str, Any]] = []
    if role == "user":
        out += results
    if text or images or calls or thinking:
        message = {"role": role, "content": "".join(text)}
        if images:
            message["images"] = images
        if calls:
            message["tool_calls"] = calls
        if thinking:
            message["thinking"] = thinking
        out.append(message)
    if role != "user":
        out += results
    return out


def _tool(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise unmarshal_error(json_kind(raw), f"{STRUCT}.tools", "anthropic.Tool")
    kind = raw.get("type")
    if isinstance(kind, str) and kind.startswith("web_search"):
        return WEB_SEARCH_TOOL
    name = struct_field(raw, "name", str, "string", f"{STRUCT}.tools") or ""
    schema = raw.get("input_schema")
    if schema is not None and not isinstance(schema, dict):
        raise BadRequest(f"invalid input_schema for tool {json.dumps(name)}: json: cannot unmarshal "
                         f"{json_kind(schema)} into Go value of type api.ToolFunctionParameters")
    function: dict[str, Any] = {"name": name}
    if isinstance(raw.get("description"), str) and raw["description"]:
        function["description"] = raw["description"]
    # no schema: an empty object schema (Ollama's zero value would hand templates a null map)
    function["parameters"] = schema or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _think(body: dict[str, Any]) -> bool | str | None:
    """`thinking.type` enabled/disabled, else `output_config.effort` as a think level."""
    thinking = body.get("thinking")
    if thinking is not None and not isinstance(thinking, dict):
        raise unmarshal_error(json_kind(thinking), f"{STRUCT}.thinking", "anthropic.ThinkingConfig")
    kind = (thinking or {}).get("type")
    if kind == "enabled":
        return True
    if kind == "disabled":
        return False
    config = body.get("output_config")
    if isinstance(config, dict) and isinstance(config.get("effort"), str):
        effort = config["effort"].strip().lower()
        effort = "high" if effort == "xhigh" else effort
        if effort in THINK_LEVELS:
            return effort
    return None


def _estimate_tokens(body: dict[str, Any]) -> int:
    """Ollama's rough input count for `message_start` (bytes / 4), before the real count is known."""
    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode())
        if isinstance(value, list):
            total = 0
            for block in value:
                if not isinstance(block, dict):
                    continue
                for key in ("text", "thinking"):
                    if isinstance(block.get(key), str):
                        total += len(block[key].encode())
                if block.get("type") in ("tool_use", "tool_result"):
                    total += len(dumps(block))
            return total
        return len(dumps(value)) if value is not None else 0

    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    total = size(body.get("system"))
    for message in messages:
        if isinstance(message, dict):
            total += len(str(message.get("role") or "").encode()) + size(message.get("content"))
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            total += sum(len(str(tool.get(k) or "").encode()) for k in ("name", "description"))
            if tool.get("input_schema") is not None:
                total += len(dumps(tool["input_schema"]))
    tokens = total // 4
    return 1 if tokens == 0 and (messages or body.get("system") is not None) else tokens


def parse(body: dict[str, Any], default_keep_alive: float) -> MessagesRequest:
    """A /v1/messages body -> the native chat request it stands for, checked as Ollama checks it."""
    model = struct_field(body, "model", str, "string", STRUCT) or ""
    max_tokens = struct_field(body, "max_tokens", int, "int", STRUCT) or 0
    messages = struct_field(body, "messages", list, "[]anthropic.MessageParam", STRUCT) or []
    stream = bool(struct_field(body, "stream", bool, "bool", STRUCT))
    options: dict[str, Any] = {}
    for key, kind, go in (("temperature", float, "float64"), ("top_p", float, "float64"), ("top_k", int, "int")):
        value = struct_field(body, key, kind, go, STRUCT)
        if value is not None:
            options[key] = value
    stops = struct_field(body, "stop_sequences", list, "[]string", STRUCT) or []
    if not all(isinstance(s, str) for s in stops):
        raise unmarshal_error("number", f"{STRUCT}.stop_sequences", "string")
    tools = [_tool(t) for t in struct_field(body, "tools", list, "[]anthropic.Tool", STRUCT) or []]
    system = _system(body.get("system"))
    think = _think(body)
    if not model:
        raise BadRequest("model is required")
    if max_tokens <= 0:
        raise BadRequest("max_tokens is required and must be positive")
    if not messages:
        raise BadRequest("messages is required")
    native: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        native += _message(message)
    if any(t is WEB_SEARCH_TOOL for t in tools):
        # a user tool named like the built-in one is dropped (Ollama routes calls by name)
        tools = [t for t in tools if t is WEB_SEARCH_TOOL or t["function"]["name"] != "web_search"]
    options = {"num_predict": max_tokens, **options}
    if stops:
        options["stop"] = stops
    chat = ChatRequest(model=model.strip(), stream=stream, format=None, options=options,
                       keep_alive=default_keep_alive, think=think, truncate=True, logprobs=False, top_logprobs=0,
                       messages=native, tools=tools)
    return MessagesRequest(chat, _estimate_tokens(body), tools)


# -- responses ----------------------------------------------------------------------------------


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def stop_reason(reason: str, called_tools: bool) -> str:
    """Ollama's done_reason -> Anthropic's stop_reason (mapStopReason)."""
    if called_tools:
        return "tool_use"
    return {"stop": "end_turn", "length": "max_tokens", "": ""}.get(reason, "stop_sequence")


def tool_use(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id or ("toolu_" + secrets.token_hex(12)), "name": call.name,
            "input": call.arguments or {}}


def message(msg_id: str, model: str, content: list[dict[str, Any]], reason: str,
            input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """A MessagesResponse: `stop_reason` is left out while it is empty (Go's omitempty)."""
    out: dict[str, Any] = {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                           "content": content}
    if reason:
        out["stop_reason"] = reason
    out["usage"] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return out


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 429: "rate_limit_error",
               503: "overloaded_error", 529: "overloaded_error"}


def error_body(status: int, message_text: str) -> dict[str, Any]:
    """`{"type":"error","error":{"type","message"},"request_id"}` (anthropic.NewError)."""
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message_text},
            "request_id": "req_" + secrets.token_hex(12)}
