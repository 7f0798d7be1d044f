"""The vLLM runner in-process on the tiny model: forced tool calls and thinking parsed back, logprobs."""

from __future__ import annotations

import asyncio

import pytest

from vllama.api.ollama import render
from vllama.engine.args import EngineSettings
from vllama.engine.base import Completion
from vllama.engine.parsers import ThinkingSplitter, tool_parser_name
from vllama.serving.replies import ReplyShape, ReplyWriter

pytestmark = pytest.mark.engine
GREEDY = {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": None, "max_tokens": 60}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.fixture(scope="module")
def runner(tiny_folder):
    settings = EngineSettings.from_env({"kv_cache_memory_bytes": 64 << 20})
    settings.apply_process_env()
    from vllama.engine.runner import VllmRunner

    r = VllmRunner.start(settings.engine_kwargs(str(tiny_folder), 2048))
    r.loop = asyncio.new_event_loop()  # AsyncLLM's output handler lives on the loop that first used it
    yield r
    # As the scheduler unloads: off the loop, while it runs (its output tasks end there, not in the GC).
    r.loop.run_until_complete(asyncio.to_thread(r.shutdown))
    r.loop.close()


def run(runner, completion: Completion, shape: ReplyShape, is_chat: bool = True) -> list[dict]:
    """The reply's deltas as Ollama's chunks."""
    async def go():
        writer = ReplyWriter(shape)
        out = []
        async for chunk in runner.complete(completion):
            out += [render.chunk("tiny", is_chat, delta) for delta in writer.feed(chunk)]
        return out

    return runner.loop.run_until_complete(go())


def prompt(runner, text: str) -> list[int]:
    return runner.tokenize(runner.render_chat([{"role": "user", "content": text}]))


def test_forced_tool_call_is_parsed_into_tool_calls(runner):
    regex = r'<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "(Paris|Rome)"\}\}\n</tool_call>'
    shape = ReplyShape(tool_parser=tool_parser_name("<tool_call>"), tools=TOOLS, tokenizer=runner.tokenizer)
    pieces = run(runner, Completion(prompt(runner, "weather?"), dict(GREEDY), regex=regex), shape)
    calls = [c for p in pieces for c in p["message"].get("tool_calls", [])]
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["function"]["arguments"]["city"] in ("Paris", "Rome")
    assert "".join(p["message"]["content"] for p in pieces) == ""


def test_forced_thinking_is_split(runner):
    regex = r"<think>[a-z]{1,8}( [a-z]{1,8}){0,3}</think>[A-Z][a-z]{1,8}"
    shape = ReplyShape(thinking=ThinkingSplitter())
    pieces = run(runner, Completion(prompt(runner, "think"), dict(GREEDY), regex=regex), shape)
    thinking = "".join(p["message"].get("thinking", "") for p in pieces)
    content = "".join(p["message"]["content"] for p in pieces)
    assert thinking and content and "<" not in thinking + content


def test_logprobs_properties(runner):
    shape = ReplyShape()
    completion = Completion(prompt(runner, "hello"), {**GREEDY, "max_tokens": 8}, logprobs=3)
    pieces = run(runner, completion, shape, is_chat=False)
    logprobs = [lp for p in pieces for lp in p.get("logprobs", [])]
    assert len(logprobs) == 8
    for lp in logprobs:
        assert lp["logprob"] <= 0 and lp["bytes"] == list(lp["token"].encode())
        top = lp["top_logprobs"]
        assert 1 <= len(top) <= 3 and [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert top[0]["token"] == lp["token"]  # greedy picks the most likely token
    text = "".join(p["response"] for p in pieces)
    assert text == "".join(lp["token"] for lp in logprobs)
