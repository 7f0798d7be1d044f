"""Contention for loaded-model slots: a model that cannot be loaded because every loaded model is
busy waits for one to go idle and then loads (issue #17: wait, don't refuse; it was a 503, and a
500 before that); past OLLAMA_MAX_QUEUE requests in flight, Ollama's 503."""

from __future__ import annotations

import threading
import time

import httpx

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.live_server import app_in_thread
from tests.waiting import wait_for
from vllama.api.app import build_app
from vllama.engine.scheduler import Scheduler


def _release_when_waiting(scheduler: Scheduler, release: threading.Event) -> threading.Thread:
    """Set `release` once a request waits for room to load its model (or after 10 s, to fail)."""
    def run() -> None:
        deadline = time.monotonic() + 10
        while not scheduler.waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_no_free_model_slot_waits_then_loads():
    runner = FakeRunner(hold=threading.Event(), hold_from=0)
    scheduler = Scheduler(lambda m: runner, max_loaded=1, check_every=0.05)
    app = build_app(FakeStore(["a:latest", "b:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        busy: dict = {}
        worker = threading.Thread(target=lambda: busy.setdefault("a", httpx.post(
            url + "/api/generate", json={"model": "a", "prompt": "x", "stream": False}, timeout=30)))
        worker.start()
        wait_for(lambda: runner.requests, "a never reached the engine", 10, every=0.01)
        # a is generating (held until b waits) and holds the only slot: b waits for it (issue #17),
        # then answers
        _release_when_waiting(scheduler, runner.hold)
        r = httpx.post(url + "/api/generate", json={"model": "b", "prompt": "x", "stream": False}, timeout=30)
        assert r.status_code == 200, r.text
        assert runner.shutdowns == 1  # a was unloaded once idle, to make room for b
        chat = {"model": "b", "messages": [{"role": "user", "content": "x"}]}
        r = httpx.post(url + "/v1/chat/completions", json=chat, timeout=30)
        assert r.status_code == 200, r.text
        worker.join(30)
        assert busy["a"].status_code == 200
        r = httpx.post(url + "/api/generate", json={"model": "b", "prompt": "x", "stream": False}, timeout=30)
        assert r.status_code == 200 and [m["name"] for m in httpx.get(url + "/api/ps").json()["models"]] == ["b:latest"]
