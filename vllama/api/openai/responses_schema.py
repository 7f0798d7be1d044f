"""OpenAI's Responses wire schema as Ollama speaks it (`openai/responses.go`): a request body
translated onto a native chat request (`FromResponsesRequest`; stateless: no stored responses,
no `previous_response_id`), and the response object it answers with.

vLLM ships pydantic models of this API (`vllm.entrypoints.openai.responses`); they accept and
refuse other things than Ollama's Go structs (and import the engine), so the body is read here the
way Ollama reads it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from ...serving.errors import BadRequest
from ...serving.requests import ChatRequest
from ..gojson import json_kind, struct_field, unmarshal_error
from .schema import EFFORTS, _decode_image_url

STRUCT = "ResponsesRequest"


@dataclass
class ResponsesRequest:
    """The native request and what the response object echoes of the original."""

    chat: ChatRequest
    body: dict[str, Any]  # the request as sent: instructions, tools, text, reasoning ... are echoed
    response_id: str
    item_id: str


# -- requests -----------------------------------------------------------------------------------


def _content(items: list[Any], where: str) -> tuple[str, list[str]]:
    """Input content parts -> (text, images) (convertResponsesContent)."""
    text, images = [], []
    for i, part in enumerate(items):
        if not isinstance(part, dict):
            raise BadRequest(f"{where}content[{i}]: json: cannot unmarshal {json_kind(part)} into Go value of "
                             "type struct { Type string \"json:\\\"type\\\"\" }")
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            value = part.get("text")
            text.append(value if isinstance(value, str) else "")
        elif kind == "input_image":
            url = part.get("image_url")
            if isinstance(url, str) and url:
                images.append(_decode_image_url(url))
        elif kind == "input_file":
            raise BadRequest("file inputs are not currently supported")
        else:
            raise BadRequest(f"{where}content[{i}]: unknown content type: {kind if isinstance(kind, str) else ''}")
    return "".join(text), images


def _message_content(value: Any, where: str) -> tuple[str, list[str]]:
    if value is None:
        return "", []
    if isinstance(value, str):
        return value, []
    if not isinstance(value, list):
        raise BadRequest(f"{where}content must be a string or array: json: cannot unmarshal "
                         f"{json_kind(value)} into Go value of type []json.RawMessage")
    return _content(value, where)


def _output(value: Any, where: str) -> tuple[str, list[str]]:
    """A function_call_output's output: a string, or content items (their text joined)."""
    if value is None or isinstance(value, str):
        return value or "", []
    if not isinstance(value, list):
        raise BadRequest(f"{where}output must be a string or array: json: cannot unmarshal "
                         f"{json_kind(value)} into Go value of type []json.RawMessage")
    return _content(value, where)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    instructions = struct_field(body, "instructions", str, "string", STRUCT) or ""
    out: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    if isinstance(value, str):
        if value:
            out.append({"role": "user", "content": value})
        return out
    if value is None:
        return out
    if not isinstance(value, list):
        raise BadRequest(f"input must be a string or array: json: cannot unmarshal {json_kind(value)} "
                         "into Go value of type []json.RawMessage")
    pending_thinking = ""
    for i, item in enumerate(value):
        where = f"input[{i}]: "
        if not isinstance(item, dict):
            raise BadRequest(f"{where}json: cannot unmarshal {json_kind(item)} into Go value of type "
                             "struct { Type string \"json:\\\"type\\\"\"; Role string \"json:\\\"role\\\"\" }")
        kind = item.get("type") if isinstance(item.get("type"), str) else ""
        if not kind and item.get("role"):
            kind = "message"  # the shorthand {"role", "content"}
        if kind == "reasoning":
            encrypted = item.get("encrypted_content")
            pending_thinking = encrypted if isinstance(encrypted, str) else ""
        elif kind == "message":
            text, images = _message_content(item.get("content"), where)
            message: dict[str, Any] = {"role": str(item.get("role") or "").lower(), "content": text}
            if images:
                message["images"] = images
            if message["role"] == "assistant" and pending_thinking:
                message["thinking"], pending_thinking = pending_thinking, ""
            out.append(message)
        elif kind == "function_call":
            arguments: Any = {}
            raw = item.get("arguments")
            if isinstance(raw, str) and raw:
                try:
                    arguments = json.loads(raw)
                except json.JSONDecodeError as err:
                    raise BadRequest(f"failed to parse function call arguments: {err.msg}") from None
            if not isinstance(arguments, dict):
                raise BadRequest("failed to parse function call arguments: json: cannot unmarshal "
                                 f"{json_kind(arguments)} into Go value of type map[string]interface {{}}")
            call = {"id": str(item.get("call_id") or ""),
                    "function": {"name": str(item.get("name") or ""), "arguments": arguments}}
            if out and out[-1]["role"] == "assistant":  # calls join the assistant message before them
                last = out[-1]
                last["tool_calls"] = [*last.get("tool_calls", []), call]
            else:
                last = {"role": "assistant", "content": "", "tool_calls": [call]}
                out.append(last)
            if pending_thinking:
                last["thinking"], pending_thinking = pending_thinking, ""
        elif kind == "function_call_output":
            text, images = _output(item.get("output"), where)
            result: dict[str, Any] = {"role": "tool", "content": text}
            if images:
                result["images"] = images
            if item.get("call_id"):
                result["tool_call_id"] = str(item["call_id"])
            out.append(result)
        elif not kind:
            raise BadRequest(f"{where}input item missing required 'type' field")
        else:
            raise BadRequest(f"{where}unknown input item type: {json.dumps(kind)}")
    if pending_thinking:
        out.append({"role": "assistant", "content": "", "thinking": pending_thinking})
    return out


def _tool(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise unmarshal_error(json_kind(raw), f"{STRUCT}.tools", "openai.ResponsesTool")
    function: dict[str, Any] = {"name": struct_field(raw, "name", str, "string", f"{STRUCT}.tools") or ""}
    if isinstance(raw.get("description"), str) and raw["description"]:
        function["description"] = raw["description"]
    parameters = raw.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise unmarshal_error(json_kind(parameters), f"{STRUCT}.tools.parameters", "map[string]interface {}")
    function["parameters"] = parameters or {"type": "object", "properties": {}}
    return {"type": raw.get("type") if isinstance(raw.get("type"), str) else "", "function": function}


def _reasoning(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("reasoning")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unmarshal_error(json_kind(value), f"{STRUCT}.reasoning", "openai.ResponsesReasoning")
    return value


def _think(reasoning: dict[str, Any]) -> bool | str | None:
    effort = struct_field(reasoning, "effort", str, "string", f"{STRUCT}.reasoning") or ""
    if not effort:
        return None
    if effort not in EFFORTS:
        raise BadRequest(f"invalid reasoning value: {json.dumps(effort)} (must be \"none\", \"minimal\", \"low\", "
                         "\"medium\", \"high\", \"xhigh\", \"max\" or \"ultra\")")
    return EFFORTS[effort]


def _format(body: dict[str, Any]) -> dict[str, Any] | None:
    text = body.get("text")
    if text is None:
        return None
    if not isinstance(text, dict):
        raise unmarshal_error(json_kind(text), f"{STRUCT}.text", "openai.ResponsesText")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise unmarshal_error(json_kind(fmt), f"{STRUCT}.text.format", "openai.ResponsesTextFormat")
    schema = fmt.get("schema")
    return schema if fmt.get("type") == "json_schema" and isinstance(schema, dict) else None


def parse(body: dict[str, Any], default_keep_alive: float) -> ResponsesRequest:
    """A /v1/responses body -> the native chat request it stands for."""
    options: dict[str, Any] = {}
    temperature = struct_field(body, "temperature", float, "float64", STRUCT)
    options["temperature"] = 1.0 if temperature is None else temperature
    top_p = struct_field(body, "top_p", float, "float64", STRUCT)
    if top_p is not None:  # no 1.0 default here: the model's own default stands (as in Ollama)
        options["top_p"] = top_p
    max_output = struct_field(body, "max_output_tokens", int, "int", STRUCT)
    if max_output is not None:
        options["num_predict"] = max_output
    chat = ChatRequest(
        model=(struct_field(body, "model", str, "string", STRUCT) or "").strip(),
        stream=bool(struct_field(body, "stream", bool, "bool", STRUCT)),
        format=_format(body),
        options=options,
        keep_alive=default_keep_alive,
        think=_think(_reasoning(body)),
        truncate=True, logprobs=False, top_logprobs=0,
        messages=_messages(body),
        tools=[_tool(t) for t in struct_field(body, "tools", list, "[]openai.ResponsesTool", STRUCT) or []],
    )
    return ResponsesRequest(chat, body, f"resp_{random.randrange(999999)}", f"msg_{random.randrange(999999)}")


# -- the response object ------------------------------------------------------------------------


def _echoed_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": t.get("type", ""), "name": t.get("name", ""), "description": t.get("description"),
             "strict": t.get("strict"), "parameters": t.get("parameters")}
            for t in body.get("tools") or [] if isinstance(t, dict)]


def _text_format(body: dict[str, Any]) -> dict[str, Any]:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return {"type": "text"}
    out: dict[str, Any] = {"type": fmt.get("type", "")}
    for key in ("name", "schema", "strict"):
        if fmt.get(key) not in (None, ""):
            out[key] = fmt[key]
    return out


def _reasoning_echo(body: dict[str, Any]) -> dict[str, Any] | None:
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return None
    effort, summary = reasoning.get("effort") or None, reasoning.get("summary") or None
    if effort is None and summary is None:
        return None
    return {k: v for k, v in (("effort", effort), ("summary", summary)) if v is not None}


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}


def response_object(req: ResponsesRequest, status: str, output: list[dict[str, Any]],
                    usage_value: dict[str, Any] | None, created_at: int | None = None,
                    completed_at: int | None = None) -> dict[str, Any]:
    """The Response object, fields in Ollama's ResponsesResponse order."""
    body = req.body
    truncation = body.get("truncation")
    return {
        "id": req.response_id, "object": "response", "created_at": created_at or int(time.time()),
        "completed_at": completed_at, "status": status, "incomplete_details": None, "model": req.chat.model,
        "previous_response_id": None, "instructions": body.get("instructions") or None, "output": output,
        "error": None, "tools": _echoed_tools(body), "tool_choice": "auto",
        "truncation": truncation if isinstance(truncation, str) else "disabled", "parallel_tool_calls": True,
        "text": {"format": _text_format(body)},
        "top_p": req.chat.options.get("top_p", 1.0), "presence_penalty": 0, "frequency_penalty": 0,
        "top_logprobs": 0, "temperature": req.chat.options["temperature"], "reasoning": _reasoning_echo(body),
        "usage": usage_value, "max_output_tokens": req.chat.options.get("num_predict"), "max_tool_calls": None,
        "store": False, "background": bool(body.get("background")), "service_tier": "default", "metadata": {},
        "safety_identifier": None, "prompt_cache_key": None,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": [output_text(text)]}


def reasoning_item(item_id: str, thinking: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": thinking}],
            "encrypted_content": thinking}  # plain text, as Ollama sends it


def function_call_item(item_id: str, call_id: str, name: str, arguments: str,
                       status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}
