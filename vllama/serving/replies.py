"""Engine chunks -> typed deltas: thinking and tool calls split off as they stream (vLLM's parsers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine.base import Chunk, ToolCall
from ..engine.parsers import (THINK_OPEN, ReasoningStream, Thinking, ThinkingSplitter, ToolStream, extract_tool_calls,
                              partial_suffix, reasoning_parser_name, tool_call_marker, tool_parser_name)
from .events import Delta


@dataclass
class ReplyShape:
    thinking: Thinking | None = None  # a ReasoningStream (vLLM's parser) or the text ThinkingSplitter
    hide_thinking: bool = False  # think: false on a thinking model: drop what it thinks anyway
    tool_parser: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tokenizer: Any = None
    thinks_first: bool = False  # a `format` applies after the thought (Completion.thinks_first)


class ReplyWriter:
    """Stateful per request. Tool calls stream through vLLM's parser (`ToolStream`); where it cannot
    be built, content that may be a tool call is held back and parsed when the reply ends."""

    def __init__(self, shape: ReplyShape):
        self.shape = shape
        wants_tools = bool(shape.tools and shape.tool_parser)
        self.stream = ToolStream.build(shape.tool_parser, shape.tokenizer, shape.tools) \
            if wants_tools and shape.tool_parser else None
        self.marker = tool_call_marker(shape.tool_parser) if wants_tools and self.stream is None else None
        self.held = ""  # content withheld because it may be a tool call (no streaming parser)
        self.in_call = False
        self.output: list[int] = []  # every token id so far, for generate's `context`

    def _content(self, text: str) -> str:
        """Content to send now. From the tool-call marker on, text waits for the end of the reply;
        so does a partial marker at the end of a delta."""
        candidate = self.held + text
        self.held = ""
        if not self.marker or not candidate:
            return candidate
        if self.in_call:
            self.held = candidate
            return ""
        at = candidate.find(self.marker)
        if self.marker == "{" and at >= 0 and candidate[:at].strip():
            at = -1  # a bare-JSON call (llama3) must be the whole reply
        if at >= 0:
            self.in_call = True
            self.held = candidate[at:]
            return candidate[:at]
        keep = partial_suffix(candidate, self.marker)
        self.held = candidate[len(candidate) - keep:]
        return candidate[: len(candidate) - keep]

    def feed(self, chunk: Chunk) -> list[Delta]:
        """The deltas this chunk makes; none when everything in it is held back."""
        self.output.extend(chunk.token_ids)
        thinking, content = (self.shape.thinking.feed(chunk.text, chunk.done, chunk.token_ids)
                             if self.shape.thinking else ("", chunk.text))
        calls: list[ToolCall] = []
        if self.stream is not None:
            content, calls = self.stream.feed(content, chunk.token_ids, chunk.done)
        else:
            content = self._content(content)
        if self.shape.hide_thinking:
            thinking = ""
        deltas = []
        if thinking or content or chunk.logprobs or calls:
            deltas.append(Delta(content=content, thinking=thinking, tool_calls=calls, logprobs=chunk.logprobs))
        if chunk.done and self.held:
            assert self.shape.tool_parser is not None  # text is only held for a tool parser's marker
            text, held_calls = extract_tool_calls(self.shape.tool_parser, self.shape.tokenizer, self.held,
                                                  self.shape.tools)
            self.held = ""
            deltas.append(Delta(content=text, tool_calls=held_calls))
        return deltas


def reply_shape(*, can_think: bool, hide_thinking: bool, model_type: str, tools: list[dict[str, Any]],
                chat_template: str, tokenizer: Any, prompt: str, prompt_ids: list[int],
                formatted: bool = False) -> ReplyShape:
    """How a model's reply is split: vLLM's reasoning parser for its family where its tokenizer has
    the parser's tokens (else the text splitter), vLLM's tool parser from the template's markers.

    With a `format` (`formatted`), the model thinks first where vLLM's parser reads the reply, the
    request thinks (think not false) and the prompt did not close the thought: the engine's grammar
    then starts at the end of the thought (the engine was started with the same parser). Otherwise
    the grammar holds from the first token, so the whole reply is content."""
    thinking: Thinking | None = None
    thinks_first = False
    if can_think:
        name = reasoning_parser_name(model_type, chat_template)
        stream = ReasoningStream.build(name, tokenizer, prompt_ids, prompt) if name else None
        thinks_first = formatted and stream is not None and not hide_thinking and stream.may_think
        if stream is not None:
            thinking = stream
        else:
            thinking = ThinkingSplitter(opened=prompt.rstrip().endswith(THINK_OPEN))
        if formatted and not thinks_first:
            thinking = None  # JSON from the first token: no thought to split off
    return ReplyShape(thinking=thinking, hide_thinking=hide_thinking,
                      tool_parser=tool_parser_name(chat_template) if tools else None,
                      tools=tools, tokenizer=tokenizer, thinks_first=thinks_first)
