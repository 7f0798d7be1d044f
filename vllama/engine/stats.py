"""vLLM's own engine statistics, per loaded model, for /metrics.

vLLM's PrometheusStatLogger registers process-global collectors and unregisters every `vllm:` one
when the next engine starts, so with several models loaded only the newest would be seen. Instead,
each started engine gets one more stat logger (vLLM calls every logger of its StatLoggerManager on
each engine step, on the event loop) that keeps this model's figures in an `EngineStats`; /metrics
renders them with the model as a label, and they go with the engine when it is unloaded.
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass, field
from typing import Any

# vLLM's buckets for time to first token and inter-token latency (seconds), abridged
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Counts per bucket (one per upper bound, then +Inf; not cumulative) and the sum of what was seen."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it), as Prometheus writes buckets."""
        out, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts):
            running += count
            out.append((bound, running))
        return out


@dataclass
class EngineStats:
    """One engine's latest scheduler state and its counts since it started."""

    running: int = 0
    waiting: int = 0
    kv_cache_usage: float = 0.0  # 0..1 of the KV cache's blocks in use
    prefix_cache_queries: int = 0  # prompt tokens looked up in the prefix cache
    prefix_cache_hits: int = 0  # of those, found there
    prompt_tokens: int = 0
    generation_tokens: int = 0
    preemptions: int = 0
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    inter_token: Histogram = field(default_factory=lambda: Histogram(ITL_BUCKETS))

    def record(self, scheduler_stats: Any, iteration_stats: Any) -> None:
        """vLLM's SchedulerStats and IterationStats of one engine step (either may be None)."""
        if scheduler_stats is not None:
            self.running = scheduler_stats.num_running_reqs
            self.waiting = scheduler_stats.num_waiting_reqs
            self.kv_cache_usage = scheduler_stats.kv_cache_usage
            self.prefix_cache_queries += scheduler_stats.prefix_cache_stats.queries
            self.prefix_cache_hits += scheduler_stats.prefix_cache_stats.hits
        if iteration_stats is not None:
            self.prompt_tokens += iteration_stats.num_prompt_tokens
            self.generation_tokens += iteration_stats.num_generation_tokens
            self.preemptions += iteration_stats.num_preempted_reqs
            for seconds in iteration_stats.time_to_first_tokens_iter:
                self.ttft.observe(seconds)
            for seconds in iteration_stats.inter_token_latencies_iter:
                self.inter_token.observe(seconds)


# id(Engine) -> its statistics, dropped with the Engine (by identity: Engines need not be hashable)
_watched: dict[int, EngineStats] = {}


def stats_of(engine: object) -> EngineStats | None:
    """The statistics of a loaded Engine that `watch` was called for."""
    return _watched.get(id(engine))


def watch(owner: object, async_llm: Any) -> EngineStats:
    """Give a started AsyncLLM a stat logger feeding a new EngineStats, kept for `owner` (the
    Engine that wraps it). An engine started with log stats off reports nothing: it stays zero."""
    stats = EngineStats()
    manager = async_llm.logger_manager
    if manager is not None:
        manager.stat_loggers.append(_logger_class()(stats))
    _watched[id(owner)] = stats
    weakref.finalize(owner, _watched.pop, id(owner), None)
    return stats


_LOGGER: type | None = None


def _logger_class() -> type:
    """vLLM's stat-logger interface, implemented once vLLM is imported (never at vllama's import)."""
    global _LOGGER
    if _LOGGER is None:
        from vllm.v1.metrics.loggers import AggregateStatLoggerBase

        class ModelStatLogger(AggregateStatLoggerBase):
            def __init__(self, stats: EngineStats) -> None:  # noqa: D107 (not vLLM's factory signature)
                self.stats = stats

            def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
                       engine_idx: int = 0) -> None:
                self.stats.record(scheduler_stats, iteration_stats)

            def log_engine_initialized(self) -> None:
                pass

        _LOGGER = ModelStatLogger
    return _LOGGER
