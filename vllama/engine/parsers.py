"""Splitting model output into thinking, content and tool calls, per model family.

Tool calls go through vLLM's own tool parsers, chosen from the markers in the chat template.
Thinking is split on the `<think>`/`</think>` text that thinking models (Qwen3, DeepSeek-R1 and
their distills, ...) write: vLLM's reasoning parsers key on those tags' token ids, which only exist
in those vocabularies, while the text split also covers templates that open `<think>` themselves.
"""

from __future__ import annotations

import json
import logging
import random
import string
from typing import Any

from .base import ToolCall

log = logging.getLogger("vllama.engine")

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# chat-template marker -> vLLM tool parser name
_TOOL_PARSERS = [("<tool_call>", "hermes"), ("[TOOL_CALLS]", "mistral"), ("<|python_tag|>", "llama3_json"),
                 ("<|start_header_id|>", "llama3_json"), ("<|tool_call|>", "phi4_mini_json")]


def tool_parser_name(template: str) -> str | None:
    for marker, name in _TOOL_PARSERS:
        if marker in template:
            return name
    return "hermes" if "tools" in template else None


def tool_call_marker(parser: str | None) -> str | None:
    return {"hermes": "<tool_call>", "mistral": "[TOOL_CALLS]", "llama3_json": "{",
            "phi4_mini_json": "functools["}.get(parser or "")


def call_id() -> str:
    """Ollama's ids: call_ and 8 characters of [a-z0-9]."""
    return "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def extract_tool_calls(parser_name: str, tokenizer: Any, text: str,
                       tools: list[dict[str, Any]]) -> tuple[str, list[ToolCall]]:
    """(content before the calls, the calls) from a whole reply, via vLLM's parser."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.tool_parsers import ToolParserManager

    try:
        parser = ToolParserManager.get_tool_parser(parser_name)(tokenizer)
        request = ChatCompletionRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": ""}], "tools": tools})
        info = parser.extract_tool_calls(text, request)
    except Exception:  # a parser that rejects the output leaves it as plain content
        log.warning("tool parser %s failed", parser_name, exc_info=True)
        return text, []
    if not info.tools_called:
        return text, []
    calls = []
    for index, call in enumerate(info.tool_calls):
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError:
            continue
        calls.append(ToolCall(id=call_id(), index=index, name=call.function.name, arguments=arguments))
    return (info.content or "") if calls else text, calls


class ThinkingSplitter:
    """Feeds text deltas, returns (thinking, content) deltas.

    Thinking is a `<think>` at the very start of the reply (or a prompt that already opened it) up to
    `</think>`; a tag anywhere else is content. A partial tag at the end of a delta is held back."""

    def __init__(self, opened: bool = False):
        self.state = "thinking" if opened else "start"
        self._pending = ""
        self._leading = True  # newlines right after <think> are layout, not thought

    def feed(self, delta: str, final: bool = False) -> tuple[str, str]:
        text = self._pending + delta
        self._pending = ""
        if self.state == "start":
            head = text.lstrip()
            if head.startswith(THINK_OPEN):
                self.state, text = "thinking", head[len(THINK_OPEN):]
            elif THINK_OPEN.startswith(head) and not final:
                self._pending = text  # could still become <think>
                return "", ""
            else:
                self.state = "content"
        if self.state == "content":
            return "", text
        at = text.find(THINK_CLOSE)
        if at >= 0:
            self.state = "content"
            return self._thought(text[:at]), text[at + len(THINK_CLOSE):].lstrip("\n")
        keep = 0 if final else partial_suffix(text, THINK_CLOSE)
        self._pending = text[len(text) - keep:]
        return self._thought(text[: len(text) - keep]), ""

    def _thought(self, text: str) -> str:
        if self._leading:
            text = text.lstrip("\n")
            self._leading = not text
        return text


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
