"""Fill-in-the-middle on a real tokenizer with Qwen2.5-Coder's FIM tokens: `insert` in the model's
capabilities, and the prompt ids in Ollama's order (prefix, prompt, suffix, suffix text, middle)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.fake_engine import FakeRunner
from tests.fixtures.tiny_model import build_tiny_llama
from vllama.engine.scheduler import Scheduler
from vllama.models.store import ModelStore
from vllama.serving.context import ServingContext
from vllama.serving.errors import BadRequest
from vllama.serving.generate import generate
from vllama.serving.requests import GenerateRequest

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

COMMON = dict(stream=True, format=None, options={}, keep_alive=300.0, think=None, truncate=True, logprobs=False,
              top_logprobs=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ModelStore:
    root = tmp_path_factory.mktemp("fim")
    store = ModelStore(root / "models", ollama=None)
    store.create_from_folder("coder", build_tiny_llama(root / "coder", fim=True))
    store.create_from_folder("plain", build_tiny_llama(root / "plain"))
    return store


@dataclass
class TokenizingRunner(FakeRunner):
    """The fake engine with a real tokenizer: prompt ids are what vLLM would be given."""

    hf: Any = None

    def tokenize(self, text: str) -> list[int]:
        return list(self.hf.encode(text, add_special_tokens=False))


def run(store: ModelStore, model: str, suffix: str) -> TokenizingRunner:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(store.get(model).path)
    runner = TokenizingRunner(context_length=2048, tokenizer=hf, hf=hf)
    ctx = ServingContext(store, Scheduler(lambda m: runner, check_every=0.05), 300.0)
    req = GenerateRequest(**{"model": model, **COMMON}, prompt="def add(a, b):", suffix=suffix)

    async def go():
        try:
            [e async for e in generate(ctx, req)]
        finally:
            await ctx.scheduler.shutdown()

    asyncio.run(go())
    return runner


def test_a_tokenizer_with_fim_tokens_has_insert(store):
    assert "insert" in store.get("coder").capabilities
    assert "insert" not in store.get("plain").capabilities


def test_suffix_renders_the_fim_tokens_in_ollamas_order(store):
    runner = run(store, "coder", "\n    return c\n")
    hf = runner.hf
    ids = [hf.convert_tokens_to_ids(t) for t in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")]
    expected = ([ids[0]] + hf.encode("def add(a, b):", add_special_tokens=False) + [ids[1]]
                + hf.encode("\n    return c\n", add_special_tokens=False) + [ids[2]])
    assert runner.requests[0].prompt_ids == expected


def test_suffix_on_a_model_without_fim_tokens_is_ollamas_400(store):
    with pytest.raises(BadRequest, match="plain:latest does not support insert"):
        run(store, "plain", "x")
