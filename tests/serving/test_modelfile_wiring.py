"""A model's SYSTEM, MESSAGE and TEMPLATE layers reach the prompt, as Ollama combines them with a
request (the fake engine: the prompt ids it is given are the rendered text's characters)."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from vllama.engine.scheduler import Scheduler
from vllama.serving.context import ServingContext
from vllama.serving.errors import BadRequest, Failed
from vllama.serving.generate import generate, rendered_prompt
from vllama.serving.requests import ChatRequest, GenerateRequest

COMMON = dict(stream=True, format=None, options={}, keep_alive=300.0, think=None, truncate=True, logprobs=False,
              top_logprobs=0)
HISTORY = [{"role": "user", "content": "Ahoy?"}, {"role": "assistant", "content": "Arr."}]
GO_TEMPLATE = ("{{ range .Messages }}[{{ .Role }}]{{ .Content }}\n{{ end }}"
               "{{ if .Suffix }}<pre>{{ .Prompt }}<suf>{{ .Suffix }}<mid>{{ end }}[assistant]")


def context(runner: FakeRunner, capabilities=("completion",), **layers) -> ServingContext:
    store = FakeStore(["pirate:latest"], list(capabilities))
    for name, value in layers.items():
        setattr(store.get("pirate"), name, value)
    return ServingContext(store, Scheduler(lambda model: runner, check_every=0.05), 300.0)


def chat(*messages: dict, **fields) -> ChatRequest:
    return ChatRequest(**{"model": "pirate", **COMMON, **fields}, messages=list(messages))


def prompt(text: str = "Who are you?", **fields) -> GenerateRequest:
    return GenerateRequest(**{"model": "pirate", **COMMON, **fields}, prompt=text)


def prompt_text(ctx: ServingContext, req) -> str:
    """The text the engine was given (the fake tokenizer maps characters to ids one to one)."""
    async def go():
        text = await rendered_prompt(ctx, req)
        events = [e async for e in generate(ctx, req)]
        await ctx.scheduler.shutdown()
        return text, events

    return asyncio.run(go())[0]


def sent(runner: FakeRunner) -> list[int]:
    return runner.requests[-1].prompt_ids


def test_generate_gets_the_modelfile_system_and_history():
    runner = FakeRunner(context_length=4096)
    text = prompt_text(context(runner, system="You are a pirate.", messages=HISTORY), prompt())
    assert text == "<system>You are a pirate.<user>Ahoy?<assistant>Arr.<user>Who are you?<assistant>"
    assert sent(runner) == runner.tokenize(text)


def test_a_request_system_replaces_the_modelfile_one():
    runner = FakeRunner(context_length=4096)
    text = prompt_text(context(runner, system="You are a pirate."), prompt(system="Be brief."))
    assert text == "<system>Be brief.<user>Who are you?<assistant>"


def test_generate_with_a_context_leaves_the_history_out():
    runner = FakeRunner(context_length=4096)
    text = prompt_text(context(runner, system="S", messages=HISTORY), prompt(context=[7, 8]))
    assert text == "<system>S<user>Who are you?<assistant>"
    assert sent(runner)[:2] == [7, 8]


def test_chat_history_then_the_request_system_after_it():
    runner = FakeRunner(context_length=4096)
    ctx = context(runner, system="You are a pirate.", messages=HISTORY)
    text = prompt_text(ctx, chat({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}))
    assert text == "<user>Ahoy?<assistant>Arr.<system>Be brief.<user>Hi<assistant>"
    text = prompt_text(context(runner, system="You are a pirate.", messages=HISTORY),
                       chat({"role": "user", "content": "Hi"}))
    assert text == "<system>You are a pirate.<user>Ahoy?<assistant>Arr.<user>Hi<assistant>"


def test_a_go_template_renders_the_exact_text():
    runner = FakeRunner(context_length=4096)
    text = prompt_text(context(runner, template=GO_TEMPLATE, system="S"), chat({"role": "user", "content": "Hi"}))
    assert text == "[system]S\n[user]Hi\n[assistant]"
    assert sent(runner) == runner.tokenize(text)


def test_a_request_template_replaces_the_models():
    runner = FakeRunner(context_length=4096)
    text = prompt_text(context(runner, template=GO_TEMPLATE), prompt("Hi", template="Q: {{ .Prompt }} A:"))
    assert text == "Q: Hi A:"


def test_a_go_template_with_suffix_is_fill_in_the_middle():
    runner = FakeRunner(context_length=4096)
    ctx = context(runner, ("completion", "insert"), template=GO_TEMPLATE)
    assert prompt_text(ctx, prompt("def f(", suffix=")\n")) == "<pre>def f(<suf>)\n<mid>[assistant]"


class FimTokenizer:
    def get_vocab(self) -> dict[str, int]:
        return {"<|fim_prefix|>": 1, "<|fim_suffix|>": 2, "<|fim_middle|>": 3, "a": 4}


def test_suffix_without_a_template_uses_the_tokenizers_fim_tokens():
    runner = FakeRunner(context_length=4096, tokenizer=FimTokenizer())
    text = prompt_text(context(runner, ("completion", "insert")), prompt("def f(", suffix=")\n"))
    assert text == "<|fim_prefix|>def f(<|fim_suffix|>)\n<|fim_middle|>"


def test_suffix_on_a_model_without_insert_is_ollamas_400():
    with pytest.raises(BadRequest, match="does not support insert"):
        prompt_text(context(FakeRunner(context_length=4096)), prompt("def f(", suffix=")"))


def test_a_template_error_is_a_500_with_gos_message():
    ctx = context(FakeRunner(context_length=4096), template="{{ .Prompt.Nope }}")
    with pytest.raises(Failed) as caught:
        prompt_text(ctx, prompt())
    assert "Nope" in caught.value.message
