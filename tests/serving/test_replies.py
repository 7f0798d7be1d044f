"""Engine chunks -> deltas, without HTTP: thinking split off, text that may be a tool call held back."""

from __future__ import annotations

import pytest

from vllama.engine.base import Chunk
from vllama.engine.parsers import ThinkingSplitter
from vllama.serving.replies import ReplyShape, ReplyWriter

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)


def deltas(shape: ReplyShape, texts: list[str]) -> list:
    writer = ReplyWriter(shape)
    out = []
    for i, text in enumerate(texts):
        out += writer.feed(Chunk(text=text, token_ids=[i], done=i == len(texts) - 1))
    return out


def test_thinking_is_split_and_can_be_hidden():
    texts = ["<think>", "\nLet me", " see.", "</th", "ink>\n\n", "Hello", "!"]
    out = deltas(ReplyShape(thinking=ThinkingSplitter()), texts)
    assert ("".join(d.thinking for d in out), "".join(d.content for d in out)) == ("Let me see.", "Hello!")
    out = deltas(ReplyShape(thinking=ThinkingSplitter(), hide_thinking=True), texts)
    assert all(not d.thinking for d in out) and "".join(d.content for d in out) == "Hello!"


def test_a_partial_marker_is_held_until_it_is_not_one():
    shape = ReplyShape(tool_parser="hermes", tools=[{"type": "function", "function": {"name": "f"}}])
    writer = ReplyWriter(shape)
    assert [d.content for d in writer.feed(Chunk(text="I need <tool"))] == ["I need "]
    assert [d.content for d in writer.feed(Chunk(text="s> here."))] == ["<tools> here."]


def test_logprobs_alone_make_a_delta():
    lp = {"token": "", "logprob": -0.1, "bytes": []}
    out = ReplyWriter(ReplyShape()).feed(Chunk(text="", token_ids=[5], logprobs=[lp]))
    assert len(out) == 1 and out[0].logprobs == [lp] and out[0].content == ""
