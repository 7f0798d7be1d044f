"""Contention for loaded-model slots: a model that cannot be loaded because every loaded model is
busy is a retryable 503 (it was a 500), and it loads once the busy one is idle."""

from __future__ import annotations

import threading
import time

import httpx

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.live_server import app_in_thread
from vllama.api.app import build_app
from vllama.engine.scheduler import Scheduler


def test_no_free_model_slot_is_a_503_then_loads():
    runner = FakeRunner(delay=0.4)
    scheduler = Scheduler(lambda m: runner, max_loaded=1, check_every=0.05)
    app = build_app(FakeStore(["a:latest", "b:latest"]), scheduler, keep_alive=300.0)
    with app_in_thread(app) as url:
        busy: dict = {}
        worker = threading.Thread(target=lambda: busy.setdefault("a", httpx.post(
            url + "/api/generate", json={"model": "a", "prompt": "x", "stream": False}, timeout=30)))
        worker.start()
        deadline = time.monotonic() + 10
        while not runner.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        r = httpx.post(url + "/api/generate", json={"model": "b", "prompt": "x", "stream": False}, timeout=30)
        assert r.status_code == 503 and r.json()["error"].startswith("server busy"), r.text
        chat = {"model": "b", "messages": [{"role": "user", "content": "x"}]}
        r = httpx.post(url + "/v1/chat/completions", json=chat, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["message"].startswith("server busy")
        worker.join(30)
        assert busy["a"].status_code == 200
        r = httpx.post(url + "/api/generate", json={"model": "b", "prompt": "x", "stream": False}, timeout=30)
        assert r.status_code == 200 and [m["name"] for m in httpx.get(url + "/api/ps").json()["models"]] == ["b:latest"]
