"""The seam between the HTTP layer and whatever runs the model: typed requests, chunks and a protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class EngineError(Exception):
    """The engine failed for reasons that are not the client's (dead engine core, load failure)."""


class InvalidRequest(ValueError):
    """The engine refused a request before running it (a token id outside the vocabulary, a JSON
    schema it cannot compile): the client's mistake, a 400."""


@dataclass
class Completion:
    """One engine request: a tokenised prompt and vLLM SamplingParams keyword arguments."""

    prompt_ids: list[int]
    sampling: dict[str, Any]
    json_schema: dict[str, Any] | None = None  # `format`: a schema, or {} for any JSON object
    want_json: bool = False
    logprobs: int | None = None  # None: none; k: the sampled token's and the k most likely
    regex: str | None = None  # force the output to match (tests force tool calls with it)


@dataclass
class Chunk:
    """A piece of generated text; the last one carries done_reason, counts and timings (ns)."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    logprobs: list[dict[str, Any]] = field(default_factory=list)  # Ollama's shape, one per token


class Runner(Protocol):
    """A loaded model."""

    context_length: int

    def render_chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                    **template_kwargs: Any) -> str: ...

    def tokenize(self, text: str) -> list[int]: ...

    def complete(self, request: Completion) -> AsyncIterator[Chunk]: ...
