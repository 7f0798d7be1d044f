"""The scheduler over HTTP with the typed fake engine (issue #17): a memory budget that fits one of
two models, a request waiting for busy models instead of a 503, Ollama's 503 past the queue bound,
and /api/ps sizes as the engine reports them."""

from __future__ import annotations

import threading
import time

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.live_server import HTTP, app_in_thread
from tests.waiting import wait_for
from vllama.api.app import build_app
from vllama.engine.memory import Estimate
from vllama.engine.scheduler import BUSY_MESSAGE, Scheduler

# each model needs 70 of a budget of 100: one fits, two do not
NEED = Estimate(weights=40, kv_cache=20, overhead=10)


def generate(url: str, model: str, stream: bool = False):
    return HTTP.post(url + "/api/generate", json={"model": model, "prompt": "x", "stream": stream}, timeout=60)


def ps(url: str) -> list[dict]:
    return HTTP.get(url + "/api/ps").json()["models"]


class Engines:
    """A new fake engine per load, remembered in load order."""

    def __init__(self, **runner_args):
        self.started: list[tuple[str, FakeRunner]] = []
        self.runner_args = runner_args

    def __call__(self, model) -> FakeRunner:
        runner = FakeRunner(**self.runner_args)
        self.started.append((model.name, runner))
        return runner


def test_a_budget_for_one_of_two_models_swaps_them_and_every_request_completes():
    engines = Engines(cache_bytes=20)
    scheduler = Scheduler(engines, max_loaded=3, check_every=0.05, budget=100, need=lambda m: NEED)
    app = build_app(FakeStore(["a:latest", "b:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        for name in ["a", "b", "a", "b", "a"]:
            r = generate(url, name)
            assert r.status_code == 200, r.text
            assert [m["name"] for m in ps(url)] == [f"{name}:latest"]  # the other was unloaded for it
        assert [name for name, _ in engines.started] == ["a:latest", "b:latest"] * 2 + ["a:latest"]
        assert [runner.shutdowns for _, runner in engines.started] == [1, 1, 1, 1, 0]


def test_two_models_within_the_budget_stay_loaded_together():
    engines = Engines()
    scheduler = Scheduler(engines, check_every=0.05, budget=140, need=lambda m: NEED)
    app = build_app(FakeStore(["a:latest", "b:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        for name in ["a", "b", "a", "b"]:
            assert generate(url, name).status_code == 200
        assert sorted(m["name"] for m in ps(url)) == ["a:latest", "b:latest"] and len(engines.started) == 2


def test_with_every_loaded_model_streaming_another_waits_and_completes_after_them():
    hold = threading.Event()  # a and b stream their first chunk, then hold until c is waiting
    engines = Engines(hold=hold)
    scheduler = Scheduler(engines, max_loaded=3, check_every=0.05, budget=150, need=lambda m: NEED)
    app = build_app(FakeStore(["a:latest", "b:latest", "c:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        done: dict[str, float] = {}

        def stream(name: str) -> None:
            with HTTP.stream("POST", url + "/api/generate", json={"model": name, "prompt": "x"}, timeout=60) as r:
                assert r.status_code == 200
                lines = list(r.iter_lines())
            assert '"done":true' in lines[-1]
            done[name] = time.monotonic()

        streams = [threading.Thread(target=stream, args=(name,)) for name in ("a", "b")]
        for t in streams:
            t.start()
        wait_for(lambda: len(engines.started) == 2 and all(r.requests for _, r in engines.started), "a, b busy")
        answer: list = []

        def generate_c() -> None:  # neither a nor b can go while they stream: c waits, then loads
            answer.append(generate(url, "c"))
            answer.append(time.monotonic())

        c = threading.Thread(target=generate_c)
        c.start()
        wait_for(lambda: scheduler.waiting == 1, "c never waited")
        hold.set()  # the streams go on and end
        c.join(30)
        r, finished = answer
        for t in streams:
            t.join(30)
        assert r.status_code == 200, r.text
        assert r.json()["done"] is True
        assert set(done) == {"a", "b"} and min(done.values()) <= finished  # room came from a stream ending
        assert [name for name, _ in engines.started][-1] == "c:latest"
        assert scheduler.waiting == 0 and scheduler.in_flight == 0


def test_past_the_queue_bound_ollamas_503():
    hold = threading.Event()  # a stays in flight (after its first chunk) until the third request is turned away
    engines = Engines(hold=hold)
    scheduler = Scheduler(engines, max_loaded=1, check_every=0.05, max_queue=2)
    app = build_app(FakeStore(["a:latest", "b:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        results: list = []
        worker = threading.Thread(target=lambda: results.append(generate(url, "a")))
        worker.start()
        wait_for(lambda: engines.started and engines.started[0][1].requests, "a never started")
        waiter = threading.Thread(target=lambda: results.append(generate(url, "b")))  # waits: 2 in flight
        waiter.start()
        wait_for(lambda: scheduler.waiting == 1, "b never queued")
        r = generate(url, "b")  # a third: past OLLAMA_MAX_QUEUE
        assert r.status_code == 503 and r.json() == {"error": BUSY_MESSAGE}
        hold.set()
        worker.join(30)
        waiter.join(30)
        assert [x.status_code for x in results] == [200, 200]


def test_ps_sizes_are_what_the_engine_reports():
    cpu = FakeRunner(cache_bytes=3 << 20)
    gpu = FakeRunner(cache_bytes=5 << 20, on_gpu=True)
    weights = {"cpu:latest": 7 << 20, "gpu:latest": 11 << 20}
    scheduler = Scheduler(lambda m: cpu if m.name == "cpu:latest" else gpu, check_every=0.05,
                          need=lambda m: Estimate(weights[m.name], 1 << 30, 0))
    app = build_app(FakeStore(["cpu:latest", "gpu:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        for name in ("cpu", "gpu"):
            assert generate(url, name).status_code == 200
        sizes = {m["name"]: (m["size"], m["size_vram"]) for m in ps(url)}
        # weights + the KV cache the engine allocated (not the estimate's 1 GiB); all of it on a GPU
        assert sizes == {"cpu:latest": ((7 + 3) << 20, 0), "gpu:latest": ((11 + 5) << 20, (11 + 5) << 20)}
