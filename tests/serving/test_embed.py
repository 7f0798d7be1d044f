"""The embedding pipeline called directly: which model, which errors, what comes back."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from vllama.engine.embedder import InputTooLong
from vllama.engine.scheduler import Scheduler
from vllama.models.names import ModelName
from vllama.serving.context import ServingContext
from vllama.serving.embed import embed
from vllama.serving.errors import BadRequest, Failed, NotFound
from vllama.serving.requests import EmbedRequest


class Embedder(FakeRunner):
    async def embed(self, texts, truncate=True, dimensions=None, *, normalize=True, limit=None):
        if not truncate and any(len(t) > 8 for t in texts):
            raise InputTooLong()
        return [[float(len(t)), 1.0][: dimensions or 2] for t in texts], sum(len(t) for t in texts)


def run(req: EmbedRequest, texts: list[str], **kwargs):
    store = FakeStore(["fake:latest", "emb:latest"])
    store.models[ModelName.parse("emb").key].capabilities = ["embedding"]
    ctx = ServingContext(store, Scheduler(lambda model: Embedder(), check_every=0.05), 300.0)

    async def go():
        try:
            return await embed(ctx, req, texts, normalize=True, **kwargs)
        finally:
            await ctx.scheduler.shutdown()

    return asyncio.run(go())


def test_vectors_tokens_and_timings():
    out = run(EmbedRequest("emb", 300.0, dimensions=1), ["abc", "de"])
    assert out.vectors == [[3.0], [2.0]] and out.prompt_tokens == 5
    assert out.total_duration >= out.load_duration > 0


def test_no_input_only_loads():
    assert run(EmbedRequest("emb", 300.0), []).vectors == []


@pytest.mark.parametrize("name, legacy, kind, message", [
    ("nope", False, NotFound, 'model "nope" not found, try pulling it first'),
    ("nope", True, NotFound, 'model "nope" not found, try pulling it first'),
    ("", True, BadRequest, "model is required"),
])
def test_model_errors(name, legacy, kind, message):
    with pytest.raises(kind, match=message):
        run(EmbedRequest(name, 300.0), ["x"], legacy=legacy)


def test_too_long_without_truncation_is_the_clients_mistake_except_on_the_legacy_route():
    req = EmbedRequest("emb", 300.0, truncate=False)
    with pytest.raises(BadRequest, match="exceeds the context length"):
        run(req, ["a long input"])
    with pytest.raises(Failed, match="exceeds the context length"):
        run(req, ["a long input"], legacy=True)
