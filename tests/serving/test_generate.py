"""The generate/chat pipeline called directly, without HTTP: typed requests in, typed events out."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from vllama.engine.scheduler import Scheduler
from vllama.serving.context import ServingContext
from vllama.serving.errors import BadRequest, Failed, NotFound
from vllama.serving.events import Delta, Done
from vllama.serving.generate import fit, generate, load_only
from vllama.serving.requests import ChatRequest, GenerateRequest

COMMON = dict(stream=True, format=None, options={}, keep_alive=300.0, think=None, truncate=True, logprobs=False,
              top_logprobs=0)


def context(runner: FakeRunner, capabilities=("completion",)) -> ServingContext:
    return ServingContext(FakeStore(["fake:latest"], list(capabilities)),
                          Scheduler(lambda model: runner, check_every=0.05), 300.0)


def chat(content: str = "hi", **fields) -> ChatRequest:
    return ChatRequest(**{"model": "fake", **COMMON, **fields}, messages=[{"role": "user", "content": content}])


def prompt(text: str = "hi", **fields) -> GenerateRequest:
    return GenerateRequest(**{"model": "fake", **COMMON, **fields}, prompt=text)


def events(ctx: ServingContext, req) -> list:
    async def go():
        out = [event async for event in generate(ctx, req)]
        await ctx.scheduler.shutdown()
        return out

    return asyncio.run(go())


def test_chat_yields_deltas_then_done_with_metrics():
    runner = FakeRunner()
    out = events(context(runner), chat())
    assert [e.content for e in out[:-1]] == ["The", " sky", " is", " blue", "."]
    assert all(isinstance(e, Delta) for e in out[:-1]) and isinstance(out[-1], Done)
    done = out[-1]
    assert done.reason == "stop" and done.context is None
    assert done.metrics.eval_count == 5 and done.metrics.prompt_eval_count == len(runner.requests[0].prompt_ids)
    assert done.metrics.total_duration >= done.metrics.load_duration > 0


def test_generate_keeps_context_unless_raw():
    runner = FakeRunner()
    done = events(context(runner), prompt(options={"num_predict": 2}))[-1]
    assert done.reason == "length" and done.context == runner.requests[0].prompt_ids + [1, 2]
    assert events(context(runner), prompt(raw=True))[-1].context is None


def test_render_and_tokenize_run_off_the_event_loop():
    seen: dict[str, int] = {}

    class Recording(FakeRunner):
        def render_chat(self, messages, tools=None, **kwargs):
            seen["render"] = threading.get_ident()
            return super().render_chat(messages, tools, **kwargs)

        def tokenize(self, text):
            seen["tokenize"] = threading.get_ident()
            return super().tokenize(text)

    events(context(Recording()), chat())
    assert threading.get_ident() not in (seen["render"], seen["tokenize"])


@pytest.mark.parametrize("req, kind, message", [
    (chat(model=""), BadRequest, "model is required"),
    (prompt(model=""), NotFound, "model '' not found"),
    (chat(model="nope"), NotFound, "model 'nope' not found"),
    (chat(model="bad name!"), BadRequest, "invalid model name"),
    (chat(think=True), BadRequest, '"fake" does not support thinking'),
    (chat(options={"temperature": "hot"}), BadRequest, "temperature"),
])
def test_what_the_client_got_wrong_is_a_typed_error(req, kind, message):
    with pytest.raises(kind, match=message):
        events(context(FakeRunner()), req)


def test_an_engine_failure_ends_the_stream():
    runner = FakeRunner(fail_after=2)

    async def go():
        ctx = context(runner)
        got = []
        with pytest.raises(Failed, match="boom"):
            async for event in generate(ctx, chat()):
                got.append(event.content)
        assert ctx.scheduler.get_loaded("fake:latest").active == 0  # released
        await ctx.scheduler.shutdown()
        return got

    assert asyncio.run(go()) == ["The", " sky"]


def test_load_and_unload_shortcuts():
    async def go():
        ctx = context(FakeRunner(), capabilities=["embedding"])
        with pytest.raises(BadRequest, match="does not support chat"):
            await load_only(ctx, chat())
        unloaded = await load_only(ctx, chat(keep_alive=0))  # any model can be unloaded
        ctx = context(FakeRunner())
        loaded = await load_only(ctx, chat())
        assert ctx.scheduler.get_loaded("fake:latest") is not None
        await ctx.scheduler.shutdown()
        return unloaded, loaded

    assert asyncio.run(go()) == (Done("unload"), Done("load"))


def test_fit_keeps_the_head_and_the_tail():
    ids = list(range(100))
    assert fit(ids, 200, 10, truncate=True) == ids
    cut = fit(ids, 64, 16, truncate=True)
    assert len(cut) == 48 and cut[:4] == [0, 1, 2, 3] and cut[-1] == 99
    with pytest.raises(BadRequest, match="exceeds the context length"):
        fit(ids, 64, 16, truncate=False)
