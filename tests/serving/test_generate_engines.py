"""Which engine a request gets: one per weights, whatever the name, and one with the context the
request asks for (the fake engine counts its starts)."""

from __future__ import annotations

import asyncio

from tests.api.fake_engine import FakeRunner, FakeStore
from vllama.engine.scheduler import Scheduler
from vllama.serving.context import ServingContext
from vllama.serving.generate import generate
from vllama.serving.requests import GenerateRequest

COMMON = dict(stream=True, format=None, options={}, keep_alive=300.0, think=None, truncate=True, logprobs=False,
              top_logprobs=0)
WEIGHTS = [{"path": "config.json", "digest": "sha256:" + "1" * 64},
           {"path": "model.safetensors", "digest": "sha256:" + "2" * 64}]


class Starts:
    """A start_runner that records what it was asked for."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __call__(self, model, context: int = 0) -> FakeRunner:
        self.calls.append((model.name, context))
        return FakeRunner(context_length=max(context, 64))


def serving(starts: Starts, names: list[str], **fields) -> ServingContext:
    store = FakeStore(names)
    for i, name in enumerate(names):
        model = store.get(name)
        model.files, model.digest = WEIGHTS, f"{i}" * 64  # one set of weights, a manifest each
        for key, value in fields.items():
            setattr(model, key, value)
    return ServingContext(store, Scheduler(starts, check_every=0.05), 300.0)


def run(ctx: ServingContext, *requests: GenerateRequest) -> list:
    async def go():
        for req in requests:
            [e async for e in generate(ctx, req)]
        loaded = ctx.scheduler.loaded()
        await ctx.scheduler.shutdown()
        return loaded

    return asyncio.run(go())


def prompt(model: str, **fields) -> GenerateRequest:
    return GenerateRequest(**{"model": model, **COMMON, **fields}, prompt="hi")


def test_two_models_from_one_weights_load_one_engine():
    starts = Starts()
    ctx = serving(starts, ["smol:latest", "pirate:latest"])
    loaded = run(ctx, prompt("smol"), prompt("pirate"), prompt("smol"))
    assert starts.calls == [("smol:latest", 0)]
    assert [entry.model.name for entry in loaded] == ["smol:latest"]  # as Ollama lists its runner


def test_a_larger_num_ctx_reloads_up_to_the_models_own_limit():
    starts = Starts()
    ctx = serving(starts, ["smol:latest"], config={"max_position_embeddings": 8192})
    loaded = run(ctx, prompt("smol"), prompt("smol", options={"num_ctx": 8192}),
                 prompt("smol", options={"num_ctx": 2048}), prompt("smol", options={"num_ctx": 100000}))
    # the smaller num_ctx runs on the larger engine; past the model's limit, Ollama's cap
    assert starts.calls == [("smol:latest", 0), ("smol:latest", 8192)]
    assert loaded[0].runner.context_length == 8192
