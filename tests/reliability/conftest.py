"""Apps for the reliability tests: the scripted engine (fast) and a real model store behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.fake_engine import FakeRunner, fake_app
from tests.live_server import app_in_thread
from tests.models.fake_repo import write_tiny_model
from vllama.api.app import build_app
from vllama.engine.scheduler import Scheduler
from vllama.models.store import ModelStore


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing here may reach a real registry: a pull ends at a closed loopback port. (Not
    HF_HUB_OFFLINE: huggingface_hub reads it once, at import, and it would stick for later tests.)"""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("VLLAMA_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_ORIGINS", raising=False)
    monkeypatch.delenv("VLLAMA_MAX_REQUEST_BYTES", raising=False)


@pytest.fixture(scope="module")
def fake_url():
    """The scripted-engine app (FakeStore, model `tiny`) on a loopback socket."""
    with app_in_thread(fake_app(FakeRunner(), names=["tiny:latest"])) as url:
        yield url


def store_app(root: Path) -> tuple[ModelStore, object]:
    """A real ModelStore holding `tiny` (a small fake-repo model), a scheduler of scripted runners."""
    store = ModelStore(root / "models")
    store.create_from_folder("tiny", write_tiny_model(root / "src"))
    scheduler = Scheduler(lambda model, *context: FakeRunner(), max_loaded=2, check_every=0.05)  # context: num_ctx
    return store, build_app(store, scheduler, keep_alive=300.0)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    store, app = store_app(tmp_path_factory.mktemp("hostile-store"))
    with app_in_thread(app) as url:
        yield url
