"""The typed events the pipeline yields and every dialect renders: deltas, then one `Done`.

A renderer is a function of these events alone (the request it answers aside): Ollama's NDJSON and
whole answers and OpenAI's SSE and whole answers are four of them, in `api/ollama/render.py` and
`api/openai/render.py`; a new dialect adds its own next to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.base import Logprob, ToolCall


@dataclass
class Delta:
    """New output: any of content, thinking, parsed tool calls, the sampled tokens' logprobs."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[Logprob] = field(default_factory=list)


@dataclass
class Metrics:
    """Ollama's six final numbers: durations in ns, counts in tokens."""

    total_duration: int
    load_duration: int
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int


@dataclass
class Done:
    """The end of an answer. `reason`: stop, length, or load/unload for the shortcuts (no metrics)."""

    reason: str
    metrics: Metrics | None = None
    context: list[int] | None = None  # generate (not raw): prompt and output ids, for the next turn


Event = Delta | Done
