"""/metrics through prometheus_client: it parses with prometheus_client's own parser, and its
request, queue, memory and engine series move as the test drives them (a fake engine for shape)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.live_server import HTTP, app_in_thread
from tests.waiting import wait_for
from vllama.api.app import build_app
from vllama.engine.memory import Estimate
from vllama.engine.scheduler import Scheduler
from vllama.engine.stats import stats_of, watch

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample: (name, sorted labels) -> value."""
    r = HTTP.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def generate(url: str, model: str) -> int:
    return HTTP.post(url + "/api/generate", json={"model": model, "prompt": "x", "stream": False},
                     timeout=30).status_code


def test_series_move_with_requests_loads_memory_and_the_queue():
    runners: dict[str, FakeRunner] = {}
    release = threading.Event()  # a holds its request until b has queued behind it

    def start(model):
        runners[model.name] = FakeRunner(cache_bytes=4096, hold=release, hold_from=0)
        return runners[model.name]

    scheduler = Scheduler(start, max_loaded=1, check_every=0.05, need=lambda m: Estimate(1000, 4096, 10))
    app = build_app(FakeStore(["a:latest", "b:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        before = scrape(url)
        assert before[("vllama_models_loaded", ())] == 0
        assert before[("vllama_queue_waiting", ())] == 0
        worker = threading.Thread(target=generate, args=(url, "a"))
        worker.start()
        wait_for(lambda: "a:latest" in runners and runners["a:latest"].requests, "a never started")
        busy = scrape(url)
        model_a = (("model", "a:latest"),)
        assert busy[("vllama_models_loaded", ())] == 1
        assert busy[("vllama_engine_requests_unfinished", model_a)] == 0  # the fake's engine holds none
        assert busy[("vllama_model_memory_bytes", model_a)] == 1000 + 4096  # weights + allocated KV
        assert busy[("vllama_model_kv_cache_bytes", model_a)] == 4096
        assert busy[("vllama_model_memory_reserved_bytes", model_a)] == 1000 + 4096 + 10
        assert busy[("vllama_requests_in_flight", ())] == 1
        assert busy[("vllama_model_load_duration_seconds_count", model_a)] == 1
        # b cannot load while a streams in the only slot: it waits, and the queue series say so
        waiter = threading.Thread(target=generate, args=(url, "b"))
        waiter.start()
        wait_for(lambda: scrape(url)[("vllama_queue_waiting", ())] == 1, "b never queued")
        release.set()
        worker.join(30)
        waiter.join(30)
        after = scrape(url)
        assert after[("vllama_queue_waiting", ())] == 0
        assert after[("vllama_queue_wait_seconds_count", ())] == 1
        assert after[("vllama_model_load_duration_seconds_count", (("model", "b:latest"),))] == 1
        assert after[("vllama_requests_total", (("endpoint", "/api/generate"), ("status", "200")))] == 2
        assert after[("vllama_requests_total", (("endpoint", "/metrics"), ("status", "200")))] >= 3
        assert ("vllama_model_memory_bytes", model_a) not in after  # a was unloaded for b
        assert HTTP.get(url + "/no/such/path").status_code == 404
        assert scrape(url)[("vllama_requests_total", (("endpoint", "other"), ("status", "404")))] == 1


def _scheduler_stats(running, waiting, usage, queries, hits):
    return SimpleNamespace(num_running_reqs=running, num_waiting_reqs=waiting, kv_cache_usage=usage,
                           prefix_cache_stats=SimpleNamespace(queries=queries, hits=hits))


def _iteration_stats(ttfts, itls):
    return SimpleNamespace(num_prompt_tokens=7, num_generation_tokens=len(itls) + len(ttfts), num_preempted_reqs=0,
                           time_to_first_tokens_iter=ttfts, inter_token_latencies_iter=itls)


def test_vllms_engine_figures_per_model():
    """The stat logger `watch` gives an AsyncLLM (a stand-in with vLLM's StatLoggerManager list)
    feeds the model's engine series, as vLLM calls it on each engine step."""
    runner = FakeRunner()
    async_llm = SimpleNamespace(logger_manager=SimpleNamespace(stat_loggers=[]))
    watch(runner, async_llm)
    [logger] = async_llm.logger_manager.stat_loggers
    app = build_app(FakeStore(["a:latest"]), Scheduler(lambda m: runner, check_every=0.05), keep_alive=300.0)
    with app_in_thread(app) as url:
        assert generate(url, "a") == 200
        model = (("model", "a:latest"),)
        first = scrape(url)
        assert first[("vllama_engine_running_requests", model)] == 0
        assert first[("vllama_engine_time_to_first_token_seconds_count", model)] == 0
        logger.record(_scheduler_stats(2, 1, 0.25, 100, 40), _iteration_stats([0.12], [0.02, 0.03]))
        logger.record(_scheduler_stats(1, 0, 0.5, 50, 50), _iteration_stats([], [0.04]))
        moved = scrape(url)
        assert moved[("vllama_engine_running_requests", model)] == 1
        assert moved[("vllama_engine_waiting_requests", model)] == 0
        assert moved[("vllama_engine_kv_cache_usage_ratio", model)] == 0.5
        assert moved[("vllama_engine_prefix_cache_queries_total", model)] == 150
        assert moved[("vllama_engine_prefix_cache_hits_total", model)] == 90
        assert moved[("vllama_engine_time_to_first_token_seconds_count", model)] == 1
        assert moved[("vllama_engine_inter_token_latency_seconds_count", model)] == 3
        assert abs(moved[("vllama_engine_inter_token_latency_seconds_sum", model)] - 0.09) < 1e-9
        le = dict(model + (("le", "0.25"),))
        assert moved[("vllama_engine_time_to_first_token_seconds_bucket", tuple(sorted(le.items())))] == 1
    assert stats_of(runner).prompt_tokens == 14
