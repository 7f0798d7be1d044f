"""`vllama serve` itself: models named in VLLAMA_PRELOAD are loaded before anyone asks for them."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ENGINE_ENV, TINY
from tests.live_server import vllama_process


@pytest.mark.engine
def test_preloaded_model_is_loaded_without_a_request(models_dir, tmp_path):
    env = {**ENGINE_ENV, "VLLAMA_PRELOAD": f"{TINY}, no-such-model"}
    with vllama_process(models_dir, env=env, log_path=tmp_path / "serve.log") as url:
        deadline = time.monotonic() + 240
        names: list[str] = []
        while time.monotonic() < deadline and not names:
            names = [m["name"] for m in httpx.get(url + "/api/ps", timeout=10).json()["models"]]
            time.sleep(0.2)
        assert names == [f"{TINY}:latest"]
        r = httpx.post(url + "/api/generate", json={"model": TINY, "prompt": "hi", "stream": False,
                                                    "options": {"num_predict": 2}}, timeout=120)
        assert r.status_code == 200 and r.json()["done"] is True
        log = tmp_path / "serve.log"
        deadline = time.monotonic() + 60  # the second preload is sent after the first one loaded
        while "preloading no-such-model failed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "preloading no-such-model failed" in log.read_text()
