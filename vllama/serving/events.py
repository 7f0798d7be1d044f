"""The typed events the pipeline yields and every dialect renders: deltas, then one `Done`.

A renderer is a function of these events alone (the request it answers aside): Ollama's NDJSON and
whole answers and OpenAI's SSE and whole answers are four of them, in `api/ollama/render.py` and
`api/openai/render.py`; a new dialect adds its own next to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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


@dataclass
class Answer:
    """A whole answer, the deltas of a stream joined: what every dialect's `stream: false` renders."""

    content: str
    thinking: str
    tool_calls: list[ToolCall]
    logprobs: list[Logprob]
    done: Done


async def collect(events: AsyncIterator[Event], unfinished: str = "") -> Answer:
    """Join the deltas; `unfinished` is the reason rendered if the stream ends without a `Done`."""
    content: list[str] = []
    thinking: list[str] = []
    tool_calls: list[ToolCall] = []
    logprobs: list[Logprob] = []
    done = Done(unfinished)
    async for event in events:
        if isinstance(event, Delta):
            content.append(event.content)
            thinking.append(event.thinking)
            tool_calls += event.tool_calls
            logprobs += event.logprobs
        else:
            done = event
    return Answer("".join(content), "".join(thinking), tool_calls, logprobs, done)


async def prepend(first: Event | None, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """The stream again with its first event (already read, to answer errors with a status) in front."""
    if first is not None:
        yield first
    async for event in rest:
        yield event
