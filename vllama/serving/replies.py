"""Engine chunks -> typed deltas: thinking split off, tool calls held back and parsed at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine.base import Chunk
from ..engine.parsers import ThinkingSplitter, extract_tool_calls, partial_suffix, tool_call_marker
from .events import Delta


@dataclass
class ReplyShape:
    thinking: ThinkingSplitter | None = None
    hide_thinking: bool = False  # think: false on a thinking model: drop what it thinks anyway
    tool_parser: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tokenizer: Any = None


class ReplyWriter:
    """Stateful per request: content that may be a tool call is held back until the reply ends."""

    def __init__(self, shape: ReplyShape):
        self.shape = shape
        self.marker = tool_call_marker(shape.tool_parser) if shape.tools else None
        self.held = ""  # content withheld because it may be a tool call
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
        thinking, content = (self.shape.thinking.feed(chunk.text, chunk.done) if self.shape.thinking
                             else ("", chunk.text))
        content = self._content(content)
        if self.shape.hide_thinking:
            thinking = ""
        deltas = []
        if thinking or content or chunk.logprobs:
            deltas.append(Delta(content=content, thinking=thinking, logprobs=chunk.logprobs))
        if chunk.done and self.held:
            assert self.shape.tool_parser is not None  # text is only held for a tool parser's marker
            text, calls = extract_tool_calls(self.shape.tool_parser, self.shape.tokenizer, self.held,
                                             self.shape.tools)
            self.held = ""
            deltas.append(Delta(content=text, tool_calls=calls))
        return deltas
