"""GET /metrics: what an operator of this server needs, in Prometheus text through prometheus_client.

Per loaded model, read when scraped: the requests its engine holds, the memory it holds, and vLLM's
own engine figures (running and waiting requests, KV-cache usage, prefix-cache lookups and hits,
time to first token and inter-token latency). For the server: models loaded, the memory budget,
requests in flight and waiting for room to load, how long they waited, how long loads took, and
requests answered by endpoint and status (`RequestMetrics`, a pure ASGI middleware).

`vllama_engine_requests_unfinished{model=...}` and `vllama_models_loaded` keep their names and
integer values: tests and bench/stress_load.py parse them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.scheduler import Scheduler
from ..engine.stats import Histogram as EngineHistogram
from ..engine.stats import stats_of

PROMETHEUS_TYPE = CONTENT_TYPE_LATEST
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LOAD_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# The endpoints are the routes' paths: anything else (a scanner's paths) is counted under one label.
OTHER_ENDPOINT = "other"


class ServerMetrics:
    """One app's registry: the scheduler's events (it calls `waited` and `loaded`), the request
    counter, and a collector that reads the loaded models when scraped."""

    def __init__(self, scheduler: Scheduler, routes: Sequence[BaseRoute]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.routes = routes
        self.requests = Counter("vllama_requests", "HTTP requests answered, by endpoint and status.",
                                ["endpoint", "status"], registry=self.registry)
        self.queue_wait = Histogram("vllama_queue_wait_seconds",
                                    "How long requests waited for room to load their model.",
                                    buckets=WAIT_BUCKETS, registry=self.registry)
        self.load_duration = Histogram("vllama_model_load_duration_seconds", "How long engines took to start.",
                                       ["model"], buckets=LOAD_BUCKETS, registry=self.registry)
        self.registry.register(_Loaded(scheduler))
        scheduler.events = self

    # the scheduler's events
    def waited(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)

    def loaded(self, key: str, seconds: float) -> None:
        self.load_duration.labels(key).observe(seconds)

    def answered(self, scope: Scope, status: int) -> None:
        self.requests.labels(self.endpoint(scope), str(status)).inc()

    def endpoint(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                return route.path
        return OTHER_ENDPOINT

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _histogram(name: str, doc: str, model: str, hist: EngineHistogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["model"])
    family.add_metric([model], [(bound, float(count)) for bound, count in hist.cumulative()], hist.total)
    return family


class _Loaded(Collector):
    """What the loaded models hold now, read from the scheduler (dead engines are not listed)."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler

    def describe(self) -> list[Metric]:
        return []  # families vary with the models loaded; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        s = self.scheduler
        loaded = s.loaded()
        unfinished = _gauge("vllama_engine_requests_unfinished", "Requests an engine holds, running or waiting.",
                            ["model"])
        held = _gauge("vllama_model_memory_bytes",
                      "Memory a loaded model's engine holds (weights and the KV cache it allocated).", ["model"])
        kv = _gauge("vllama_model_kv_cache_bytes", "The KV cache a loaded model's engine allocated.", ["model"])
        reserved = _gauge("vllama_model_memory_reserved_bytes",
                          "The estimate a model was loaded with, counted against the budget.", ["model"])
        active = _gauge("vllama_model_requests_active", "Requests the server holds for a model.", ["model"])
        for entry in loaded:
            name = entry.model.name
            unfinished.add_metric([name], entry.runner.unfinished())
            held.add_metric([name], (entry.weights or entry.model.size) + entry.runner.cache_bytes)
            kv.add_metric([name], entry.runner.cache_bytes)
            reserved.add_metric([name], entry.reserved)
            active.add_metric([name], entry.active)
        yield unfinished
        models = _gauge("vllama_models_loaded", "Models loaded now.")
        models.add_metric([], len(loaded))
        yield models
        yield from (held, kv, reserved, active)
        budget = _gauge("vllama_memory_budget_bytes", "Memory the engines may hold together (0: not bounded).")
        budget.add_metric([], s.budget or 0)
        in_use = _gauge("vllama_memory_held_bytes", "Memory the loaded engines and loads in progress hold.")
        in_use.add_metric([], s.held())
        in_flight = _gauge("vllama_requests_in_flight", "Requests in flight (bounded by OLLAMA_MAX_QUEUE).")
        in_flight.add_metric([], s.in_flight)
        waiting = _gauge("vllama_queue_waiting", "Requests waiting for room to load their model.")
        waiting.add_metric([], s.waiting)
        yield from (budget, in_use, in_flight, waiting)
        yield from _engine_families(loaded)


def _engine_families(loaded: list[Any]) -> Iterator[Metric]:
    """vLLM's own figures for each loaded model whose engine reports them."""
    running = _gauge("vllama_engine_running_requests", "Requests the engine is running.", ["model"])
    waiting = _gauge("vllama_engine_waiting_requests", "Requests waiting in the engine's queue.", ["model"])
    usage = _gauge("vllama_engine_kv_cache_usage_ratio", "Fraction of the KV cache in use (0-1).", ["model"])
    queries = CounterMetricFamily("vllama_engine_prefix_cache_queries", "Prompt tokens looked up in the prefix "
                                  "cache.", labels=["model"])
    hits = CounterMetricFamily("vllama_engine_prefix_cache_hits", "Prompt tokens found in the prefix cache.",
                               labels=["model"])
    prompt = CounterMetricFamily("vllama_engine_prompt_tokens", "Prompt tokens processed.", labels=["model"])
    generated = CounterMetricFamily("vllama_engine_generation_tokens", "Tokens generated.", labels=["model"])
    preempted = CounterMetricFamily("vllama_engine_preemptions", "Requests preempted (KV cache full).",
                                    labels=["model"])
    histograms: list[Metric] = []
    for entry in loaded:
        stats = stats_of(entry.runner)
        if stats is None:
            continue
        name = [entry.model.name]
        running.add_metric(name, stats.running)
        waiting.add_metric(name, stats.waiting)
        usage.add_metric(name, stats.kv_cache_usage)
        queries.add_metric(name, stats.prefix_cache_queries)
        hits.add_metric(name, stats.prefix_cache_hits)
        prompt.add_metric(name, stats.prompt_tokens)
        generated.add_metric(name, stats.generation_tokens)
        preempted.add_metric(name, stats.preemptions)
        histograms.append(_histogram("vllama_engine_time_to_first_token_seconds", "Time to first token.",
                                     entry.model.name, stats.ttft))
        histograms.append(_histogram("vllama_engine_inter_token_latency_seconds", "Time between tokens.",
                                     entry.model.name, stats.inter_token))
    yield from (running, waiting, usage, queries, hits, prompt, generated, preempted)
    yield from _merge(histograms)


def _merge(families: list[Metric]) -> Iterator[Metric]:
    """One family per histogram name, with every model's samples."""
    merged: dict[str, Metric] = {}
    for family in families:
        if family.name in merged:
            merged[family.name].samples.extend(family.samples)
        else:
            merged[family.name] = family
    yield from merged.values()


class RequestMetrics:
    """Counts every HTTP response by route and status (streams counted when their head is sent)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: ServerMetrics = scope["app"].state.metrics

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.answered(scope, message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)


async def metrics(request: Request) -> Response:
    server: ServerMetrics = request.app.state.metrics
    return Response(server.render(), media_type=PROMETHEUS_TYPE)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
