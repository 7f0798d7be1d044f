"""Engine chunks -> Ollama's generate/chat chunks: thinking split off, tool calls parsed, final metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..engine.base import Chunk
from ..engine.parsers import ThinkingSplitter, partial_suffix, extract_tool_calls, tool_call_marker
from .streaming import rfc3339_now


@dataclass
class ReplyShape:
    model: str  # echoed as the client wrote it
    is_chat: bool
    context_prefix: list[int] | None = None  # generate (not raw): the prompt ids, for `context`
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
        self.output: list[int] = []

    def piece(self, content: str = "", thinking: str = "", **extra: Any) -> dict[str, Any]:
        s = self.shape
        out: dict[str, Any] = {"model": s.model, "created_at": rfc3339_now()}
        if s.is_chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if "tool_calls" in extra:
                message["tool_calls"] = extra.pop("tool_calls")
            out["message"] = message
        else:
            out["response"] = content
            if thinking:
                out["thinking"] = thinking
        out["done"] = False
        out.update(extra)
        return out

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

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]:
        self.output.extend(chunk.token_ids)
        thinking, content = (self.shape.thinking.feed(chunk.text, chunk.done) if self.shape.thinking
                             else ("", chunk.text))
        content = self._content(content)
        if self.shape.hide_thinking:
            thinking = ""
        pieces = []
        extra = {"logprobs": chunk.logprobs} if chunk.logprobs else {}
        if thinking or content or extra:
            pieces.append(self.piece(content, thinking, **extra))
        if chunk.done and self.held:
            text, calls = extract_tool_calls(self.shape.tool_parser, self.shape.tokenizer, self.held,
                                             self.shape.tools)
            self.held = ""
            pieces.append(self.piece(text, tool_calls=calls) if calls else self.piece(text))
        return pieces

    def final(self, metrics: dict[str, Any]) -> dict[str, Any]:
        final = self.piece("")
        final.update(done=True, done_reason=metrics.pop("done_reason"))
        if self.shape.context_prefix is not None:
            final["context"] = self.shape.context_prefix + self.output
        final.update(metrics)
        return final




async def aggregate(chunks: AsyncIterator[dict[str, Any]], is_chat: bool) -> dict[str, Any]:
    """`stream: false`: deltas concatenated, everything else from the final chunk."""
    content: list[str] = []
    thinking: list[str] = []
    tool_calls: list[Any] = []
    logprobs: list[Any] = []
    last: dict[str, Any] = {}
    async for chunk in chunks:
        part = chunk["message"] if is_chat else chunk
        content.append(part.get("content" if is_chat else "response", ""))
        thinking.append(part.get("thinking", ""))
        tool_calls += part.get("tool_calls", [])
        logprobs += chunk.get("logprobs", [])
        last = chunk
    if is_chat:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if any(thinking):
            message["thinking"] = "".join(thinking)
        if tool_calls:
            message["tool_calls"] = tool_calls
        last["message"] = message
    else:
        last["response"] = "".join(content)
        if any(thinking):
            last["thinking"] = "".join(thinking)
    if logprobs:
        last["logprobs"] = logprobs
    return last
