"""VllmRunner without a real engine: logprob rendering and what it logs when the engine core dies."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field

import pytest

from vllama.engine.base import Completion, EngineError
from vllama.engine.runner import MIN_LOGPROB, VllmRunner, _ollama_logprobs

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)


@dataclass
class _Logprob:
    logprob: float
    decoded_token: str


@dataclass
class _Output:
    token_ids: list[int]
    logprobs: list[dict[int, _Logprob]] = field(default_factory=list)


def test_masked_candidates_get_a_finite_logprob():
    """A token the grammar masks has -inf (and a broken one NaN): JSON cannot carry either."""
    out = _Output([7], [{7: _Logprob(-0.5, "a"), 8: _Logprob(-math.inf, "b"), 9: _Logprob(math.nan, "c")}])
    [entry] = _ollama_logprobs(out, top=3)
    assert entry["logprob"] == -0.5
    assert [t["logprob"] for t in entry["top_logprobs"]][0] == -0.5
    assert {t["token"]: t["logprob"] for t in entry["top_logprobs"]}["b"] == MIN_LOGPROB
    assert all(math.isfinite(t["logprob"]) for t in entry["top_logprobs"])


class _DyingEngine:
    """Stands in for AsyncLLM: every request waits until the core 'dies', then raises as vLLM does."""

    def __init__(self) -> None:
        self.started = 0
        self.die = asyncio.Event()

    def get_tokenizer(self) -> None:
        return None

    async def generate(self, prompt, params, request_id):
        from vllm.v1.engine.exceptions import EngineDeadError

        self.started += 1
        await self.die.wait()
        raise EngineDeadError()
        yield  # an async generator, like AsyncLLM.generate


def test_a_dying_engine_core_logs_the_request_mix_once(caplog):
    engine = _DyingEngine()
    runner = VllmRunner(engine, context_length=64)
    requests = [Completion([1, 2, 3], {"max_tokens": 8, "temperature": 0.7, "seed": 5}),
                Completion([1] * 40, {"max_tokens": 4, "temperature": 0.0}, want_json=True, logprobs=2)]

    async def consume(request: Completion) -> None:
        async for _ in runner.complete(request):
            pass

    async def main() -> list[BaseException | None]:
        tasks = [asyncio.ensure_future(consume(r)) for r in requests]
        while engine.started < len(requests):
            await asyncio.sleep(0)
        engine.die.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    with caplog.at_level(logging.ERROR, logger="vllama.engine"):
        results = asyncio.run(main())
    assert all(isinstance(r, EngineError) for r in results)
    deaths = [r.getMessage() for r in caplog.records if "engine core died" in r.getMessage()]
    assert len(deaths) == 1
    assert "2 requests in flight" in deaths[0]
    assert "seed=5" in deaths[0] and "temperature=0.7" in deaths[0] and "prompt=3" in deaths[0]
    assert "prompt=40" in deaths[0] and "structured" in deaths[0] and "logprobs=2" in deaths[0]


@pytest.mark.parametrize("alive", [True, False])
def test_alive_follows_the_engine(alive):
    class Engine(_DyingEngine):
        errored = not alive

    assert VllmRunner(Engine(), context_length=8).alive is alive
