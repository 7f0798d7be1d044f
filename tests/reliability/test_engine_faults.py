"""Back-pressure, a killed engine core and a restart, on a `vllama serve` of our own (tiny model,
OLLAMA_MAX_QUEUE=4), since these tests saturate and break it. A second server, started on the same
store after the first one stops, is the restart. The tests run in file order on one server."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import psutil
import pytest

from bench.stress_load import engine_pids, server_pid, settle, unfinished
from tests.conftest import ENGINE_ENV, TINY
from tests.live_server import vllama_process

pytestmark = pytest.mark.engine

BUSY = "server busy, please try again.  maximum pending requests exceeded"
ENV = {**ENGINE_ENV, "OLLAMA_MAX_QUEUE": "4", "OLLAMA_MAX_LOADED_MODELS": "1"}
LONG = {"model": TINY, "prompt": "Tell me everything.", "options": {"num_predict": 2000, "temperature": 0}}
SHORT = {"model": TINY, "prompt": "hi", "stream": False, "options": {"num_predict": 4}}


class Own:
    def __init__(self, models_dir, log_dir):
        self.models_dir, self.log_dir = models_dir, log_dir
        self.stack = ExitStack()
        self.url = self.stack.enter_context(vllama_process(models_dir, env=ENV, log_path=log_dir / "own-1.log"))
        self.pid = server_pid(self.url)

    def stop(self) -> None:
        self.stack.close()


@pytest.fixture(scope="module")
def own(models_dir, tmp_path_factory):
    server = Own(models_dir, tmp_path_factory.mktemp("own-logs"))
    try:
        yield server
    finally:
        server.stop()


def generate(url: str, body: dict = SHORT, timeout: float = 300) -> httpx.Response:
    return httpx.post(url + "/api/generate", json=body, timeout=timeout)


def _open_streams(stack: ExitStack, client: httpx.Client, n: int) -> list:
    """n long streams, each read up to its first chunk (so each holds a slot)."""
    streams = []
    for _ in range(n):
        r = stack.enter_context(client.stream("POST", "/api/generate", json=LONG))
        assert r.status_code == 200
        lines = r.iter_lines()
        assert "response" in json.loads(next(lines))
        streams.append((r, lines))
    return streams


# -- back-pressure ----------------------------------------------------------------------------------

def test_past_the_queue_bound_requests_get_503_then_recover(own):
    url = own.url
    assert generate(url).status_code == 200  # load the model first
    refused = [
        ("/api/generate", {**SHORT, "stream": True}),
        ("/api/generate", SHORT),
        ("/api/chat", {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "stream": False}),
        ("/v1/chat/completions", {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}),
        ("/v1/completions", {"model": TINY, "prompt": "hi", "max_tokens": 4}),
    ]
    with ExitStack() as stack, httpx.Client(base_url=url, timeout=120) as client:
        streams = _open_streams(stack, client, 4)
        assert unfinished(url) == 4
        for path, body in refused:
            started = time.monotonic()
            r = httpx.post(url + path, json=body, timeout=60)
            assert r.status_code == 503, (path, r.text)
            error = r.json()["error"]
            assert (error["message"] if path.startswith("/v1/") else error) == BUSY
            assert time.monotonic() - started < 10  # refused at once, not queued
        for path in ("/", "/api/tags", "/api/ps", "/metrics", "/api/version"):  # the rest of the API still answers
            assert httpx.request("HEAD" if path == "/" else "GET", url + path, timeout=30).status_code == 200
        # load drops by one: a slot opens
        streams[0][0].close()
        deadline = time.monotonic() + 30
        while (r := generate(url)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.status_code == 200 and r.json()["done"] is True
    assert settle(url, 30) == 0
    # a burst past the bound: four answered, the rest refused, none hanging
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(f.result().status_code for f in [
            pool.submit(generate, url, {**SHORT, "options": {"num_predict": 64}}) for _ in range(8)])
    assert codes.count(200) >= 4 and set(codes) <= {200, 503}, codes
    assert settle(url, 30) == 0
    assert [generate(url).status_code for _ in range(4)] == [200] * 4


# -- the engine core killed mid-generation --------------------------------------------------------------

def test_engine_core_killed_mid_generation(own):
    url = own.url
    assert generate(url).status_code == 200
    [engine] = engine_pids(own.pid)
    whole: dict = {}

    def non_streamed() -> None:
        r = httpx.post(url + "/api/generate", json={**LONG, "stream": False}, timeout=120)
        whole["answer"] = (r.status_code, r.json())

    worker = threading.Thread(target=non_streamed)
    with ExitStack() as stack, httpx.Client(base_url=url, timeout=120) as client:
        streams = _open_streams(stack, client, 3)
        worker.start()
        deadline = time.monotonic() + 30
        while unfinished(url) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(engine, signal.SIGKILL)
        for _, lines in streams:
            rest = [json.loads(line) for line in lines if line]
            assert rest and "error" in rest[-1], rest[-3:]  # Ollama's in-band error after the first chunk
            assert rest[-1]["error"].startswith("model runner failed")
            assert not any(chunk.get("done") for chunk in rest)
    worker.join(120)
    status, body = whole["answer"]
    assert status == 500 and body["error"].startswith("model runner failed"), whole
    assert httpx.head(url + "/", timeout=10).status_code == 200  # the API stayed up

    r = generate(url)  # reloads the model on a fresh engine core
    assert r.status_code == 200 and r.json()["done"] is True, r.text
    fresh = engine_pids(own.pid)
    assert len(fresh) == 1 and fresh != [engine], fresh
    assert not psutil.pid_exists(engine) or psutil.Process(engine).status() == psutil.STATUS_ZOMBIE
    # the killed requests gave their slots back: four at once still fit under OLLAMA_MAX_QUEUE=4
    with ThreadPoolExecutor(4) as pool:
        assert [f.result().status_code for f in [pool.submit(generate, url) for _ in range(4)]] == [200] * 4
    assert settle(url, 30) == 0


# -- restart with models on disk ----------------------------------------------------------------------

def test_restart_with_models_on_disk(own):
    before = httpx.get(own.url + "/api/tags", timeout=30).json()["models"]
    engines = engine_pids(own.pid)
    greedy = {**SHORT, "options": {"num_predict": 8, "temperature": 0}}
    first = generate(own.url, greedy).json()
    own.stop()
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in engines):
        assert time.monotonic() < deadline, "an engine core outlived its server"
        time.sleep(0.2)
    with vllama_process(own.models_dir, env=ENV, log_path=own.log_dir / "own-2.log") as url:
        after = httpx.get(url + "/api/tags", timeout=30).json()["models"]
        assert [(m["name"], m["digest"]) for m in after] == [(m["name"], m["digest"]) for m in before]
        again = generate(url, greedy).json()
        assert again["done"] is True and again["response"] == first["response"]  # the same model, greedy
