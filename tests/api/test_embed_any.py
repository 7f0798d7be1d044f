"""Embeddings from any model (Ollama's behaviour; compat KD-3 retired): a generation model is loaded a
second time as its embedding view, an engine keyed apart from its generation engine."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app
from tests.api.test_embed_http import FakeEmbedder


@pytest.fixture(scope="module")
def app():
    started: list = []

    def start(model):
        started.append(model)
        embedder, generator = app.current
        return embedder if "embedding" in model.capabilities else generator

    with shared_app(FakeStore(["fake:latest"]), start) as app:
        app.started = started
        yield app


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def test_every_route_embeds_with_a_generation_model(app):
    embedder = FakeEmbedder()
    app.reset((embedder, FakeRunner()))
    r = httpx.post(app.url + "/api/embed", json={"model": "fake", "input": ["a b", "c"]})
    assert r.status_code == 200, r.text
    assert all(abs(norm(v) - 1) < 1e-6 for v in r.json()["embeddings"])
    r = httpx.post(app.url + "/api/embeddings", json={"model": "fake", "prompt": "a b"})
    assert r.status_code == 200 and norm(r.json()["embedding"]) > 1  # the legacy route: not normalised
    r = httpx.post(app.url + "/v1/embeddings", json={"model": "fake", "input": "a b"})
    assert r.status_code == 200 and abs(norm(r.json()["data"][0]["embedding"]) - 1) < 1e-6
    assert [c["normalize"] for c in embedder.calls] == [True, False, True]
    view = app.started[-1]
    assert view.for_embedding and view.capabilities == ["embedding"] and view.name == "fake:latest"


def test_the_embedding_engine_is_keyed_apart_from_the_generation_engine(app):
    app.reset((FakeEmbedder(), FakeRunner()))
    assert httpx.post(app.url + "/api/generate", json={"model": "fake", "prompt": "hi", "stream": False}
                      ).status_code == 200
    assert httpx.post(app.url + "/api/embed", json={"model": "fake", "input": "hi"}).status_code == 200
    assert sorted(e.key for e in app.scheduler.loaded()) == ["fake:latest", "fake:latest#embed"]


def test_stopping_the_model_unloads_its_embedding_engine_too(app):
    app.reset((FakeEmbedder(), FakeRunner()))
    assert httpx.post(app.url + "/api/embed", json={"model": "fake", "input": "hi"}).status_code == 200
    assert httpx.post(app.url + "/api/generate", json={"model": "fake", "prompt": "hi", "stream": False}
                      ).status_code == 200
    r = httpx.post(app.url + "/api/generate", json={"model": "fake", "keep_alive": 0})
    assert r.status_code == 200 and r.json()["done_reason"] == "unload"
    assert app.scheduler.loaded() == []
