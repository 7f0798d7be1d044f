"""`format` on a thinking model, without a real engine: the engine gets the reasoning parser at start,
serving decides per request whether the model thinks first, and the runner tells vLLM per request
when the grammar starts (`reasoning_ended`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from vllama.engine.args import EngineSettings
from vllama.engine.base import Completion
from vllama.engine.scheduler import Scheduler
from vllama.serving.context import ServingContext
from vllama.serving.generate import generate
from vllama.serving.replies import reply_shape
from vllama.serving.requests import ChatRequest

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

THINK_TEMPLATE = "{{ messages }}{% if enable_thinking %}<think>\n{% endif %}"
COMMON = dict(stream=True, format=None, options={}, keep_alive=300.0, think=None, truncate=True, logprobs=False,
              top_logprobs=0)


@pytest.fixture(scope="module")
def tokenizer(tiny_folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_folder))
    tok.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    return tok


# -- the engine's arguments -------------------------------------------------------------------

def test_a_reasoning_parser_goes_to_the_structured_output_config_only():
    settings = EngineSettings()
    kwargs = settings.engine_kwargs("/m", 2048, reasoning_parser="deepseek_r1")
    assert kwargs["structured_outputs_config"] == {"reasoning_parser": "deepseek_r1"}
    assert "reasoning_parser" not in kwargs  # vLLM's engine-wide one builds the parser at start
    assert "structured_outputs_config" not in settings.engine_kwargs("/m", 2048)
    assert "structured_outputs_config" not in settings.engine_kwargs("/m", 2048, reasoning_parser=None)


def test_the_users_structured_output_config_wins():
    mine = {"backend": "guidance", "reasoning_parser": "qwen3"}
    settings = EngineSettings(overrides={"structured_outputs_config": mine})
    assert settings.engine_kwargs("/m", 2048, reasoning_parser="deepseek_r1")["structured_outputs_config"] == mine


# -- what the runner tells vLLM per request ---------------------------------------------------

class _Output:
    def __init__(self) -> None:
        self.text, self.token_ids, self.finish_reason, self.logprobs = "{}", [7], "stop", None


class _RecordingEngine:
    """Stands in for AsyncLLM: records the keyword arguments of each generate call."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.calls: list[dict[str, Any]] = []

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    async def generate(self, prompt, params, request_id, **kwargs):
        self.calls.append({"structured": params.structured_outputs, **kwargs})
        yield type("Out", (), {"outputs": [_Output()], "finished": True, "prompt_token_ids": None})()


def _gate(runner, completion: Completion) -> dict[str, Any]:
    async def go() -> None:
        async for _ in runner.complete(completion):
            pass

    asyncio.run(go())
    call = dict(runner.engine.calls[-1])
    call.pop("structured")
    return call


def _json(thinks_first: bool) -> Completion:
    return Completion([1, 2], {"max_tokens": 4, "temperature": 0.0}, want_json=True, thinks_first=thinks_first)


def test_the_runner_lets_a_thinking_request_think_before_the_grammar(tokenizer):
    from vllama.engine.runner import VllmRunner

    runner = VllmRunner(_RecordingEngine(tokenizer), 64, reasoning_parser="deepseek_r1")
    assert runner.thinks_first
    assert _gate(runner, _json(True)) == {"reasoning_ended": None}  # the engine's parser finds the end
    assert _gate(runner, _json(False)) == {"reasoning_ended": True}  # JSON from the first token
    schema = Completion([1], {"max_tokens": 4}, json_schema={"type": "object"})
    assert _gate(runner, schema) == {"reasoning_ended": True}
    assert _gate(runner, Completion([1], {"max_tokens": 4}, thinks_first=True)) == {}  # no grammar: nothing to gate


def test_a_parser_that_does_not_fit_the_tokenizer_never_waits(tiny_folder):
    """Without think tokens the engine core could not build the parser: every grammar starts at once."""
    from transformers import AutoTokenizer

    from vllama.engine.runner import VllmRunner

    runner = VllmRunner(_RecordingEngine(AutoTokenizer.from_pretrained(str(tiny_folder))), 64,
                        reasoning_parser="deepseek_r1")
    assert not runner.thinks_first
    assert _gate(runner, _json(True)) == {"reasoning_ended": True}


def test_an_engine_without_a_reasoning_parser_gets_no_gate(tokenizer):
    from vllama.engine.runner import VllmRunner

    runner = VllmRunner(_RecordingEngine(tokenizer), 64)
    assert _gate(runner, _json(True)) == {}


# -- what serving decides ---------------------------------------------------------------------

def _serve(tokenizer, **fields) -> Completion:
    runner = FakeRunner(chat_template=THINK_TEMPLATE, tokenizer=tokenizer)
    ctx = ServingContext(FakeStore(["fake:latest"], ["completion", "thinking"]),
                         Scheduler(lambda model: runner, check_every=0.05), 300.0)
    req = ChatRequest(**{"model": "fake", **COMMON, **fields}, messages=[{"role": "user", "content": "hi"}])

    async def go() -> None:
        [e async for e in generate(ctx, req)]
        await ctx.scheduler.shutdown()

    asyncio.run(go())
    return runner.requests[-1]


@pytest.mark.parametrize("fields, thinks_first", [
    (dict(think=True, format="json"), True),
    (dict(think=None, format={"type": "object"}), True),  # think unset on a thinking model: it thinks
    (dict(think=False, format="json"), False),
    (dict(think=True), False),  # no format: nothing waits
])
def test_serving_says_whether_the_model_thinks_first(tokenizer, fields, thinks_first):
    assert _serve(tokenizer, **fields).thinks_first is thinks_first


def test_a_prompt_that_closed_the_thought_is_json_from_the_first_token(tokenizer):
    prompt = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    shape = reply_shape(can_think=True, hide_thinking=False, model_type="qwen3", tools=[], chat_template="<think>",
                        tokenizer=tokenizer, prompt=prompt,
                        prompt_ids=tokenizer.encode(prompt, add_special_tokens=False), formatted=True)
    assert not shape.thinks_first and shape.thinking is None  # the whole reply is the JSON


def test_json_from_the_first_token_is_all_content(tokenizer):
    """think false on a template that opens the thought anyway: the grammar holds from the first
    token, so the reply is content, not a thought to hide."""
    prompt = "<|im_start|>assistant\n<think>\n"
    args = dict(can_think=True, model_type="", tools=[], chat_template="<think>", tokenizer=tokenizer, prompt=prompt,
                prompt_ids=tokenizer.encode(prompt, add_special_tokens=False))
    hidden = reply_shape(hide_thinking=True, formatted=True, **args)
    assert not hidden.thinks_first and hidden.thinking is None
    shown = reply_shape(hide_thinking=False, formatted=True, **args)
    assert shown.thinks_first and shown.thinking is not None
    assert reply_shape(hide_thinking=False, **args).thinking is not None  # no format: as before
