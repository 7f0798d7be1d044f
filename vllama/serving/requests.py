"""Typed requests the pipeline serves, whatever dialect they arrived in (already validated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CommonRequest:
    model: str  # as the client wrote it: answers echo it
    stream: bool
    format: str | dict[str, Any] | None  # "json", a JSON schema, or None
    options: dict[str, Any]
    keep_alive: float  # seconds; FOREVER for never
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
    template: str = ""  # the request's own Go template, in place of the model's
    context: list[int] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


@dataclass
class ChatRequest(CommonRequest):
    messages: list[dict[str, Any]] = field(default_factory=list)  # Ollama's message fields
    tools: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EmbedRequest:
    model: str
    keep_alive: float
    options: dict[str, Any] = field(default_factory=dict)
    truncate: bool = True
    dimensions: int = 0


def is_empty(req: CommonRequest) -> bool:
    """No conversation or prompt: Ollama's load (or, with keep_alive 0, unload) shortcut."""
    if isinstance(req, ChatRequest):
        return not req.messages
    assert isinstance(req, GenerateRequest)
    return not (req.prompt or req.context)
