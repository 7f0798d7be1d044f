"""Thinking and tool calls split out of scripted model output, over a real socket."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, fake_app
from tests.live_server import app_in_thread

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

HERMES_TEMPLATE = "{% if tools %}...<tool_call>...{% endif %}"
CALL = ["Sure. ", "<tool_", "call>\n", '{"name": "get_weather", ', '"arguments": {"city": "Paris"}}', "\n</tool_call>"]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


def stream(url: str, path: str, body: dict) -> list[dict]:
    r = httpx.post(url + path, json=body, timeout=60)  # the first tool call imports vLLM's parsers
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def test_thinking_is_split_from_content():
    runner = FakeRunner(words=["<think>", "\nLet me", " see.", "</th", "ink>\n\n", "Hello", "!"])
    with app_in_thread(fake_app(runner, capabilities=["completion", "thinking"])) as url:
        chunks = stream(url, "/api/chat", {"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                                          "options": {"num_predict": 10}})
        thinking = "".join(c["message"].get("thinking", "") for c in chunks)
        content = "".join(c["message"]["content"] for c in chunks)
        assert (thinking, content) == ("Let me see.", "Hello!")
        assert "<think>" not in content and chunks[-1]["done"]
        body = httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "stream": False}).json()
        assert (body["thinking"], body["response"]) == ("Let me see.", "Hello!")
        body = httpx.post(url + "/api/chat", json={"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                                                  "think": False, "stream": False}).json()
        assert body["message"] == {"role": "assistant", "content": "Hello!"}


def test_a_tool_call_becomes_tool_calls():
    runner = FakeRunner(words=CALL, chat_template=HERMES_TEMPLATE)
    with app_in_thread(fake_app(runner, capabilities=["completion", "tools"])) as url:
        body = {"model": "fake", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS}
        chunks = stream(url, "/api/chat", body)
        assert "".join(c["message"]["content"] for c in chunks) == "Sure. "
        assert not any("<tool_call>" in c["message"]["content"] for c in chunks)
        calls = [call for c in chunks for call in c["message"].get("tool_calls", [])]
        assert len(calls) == 1 and chunks[-1]["done"] and "tool_calls" not in chunks[-1]["message"]
        assert calls[0]["function"] == {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}
        assert re.fullmatch(r"call_[a-z0-9]{8}", calls[0]["id"])
        whole = httpx.post(url + "/api/chat", json={**body, "stream": False}, timeout=60).json()
        assert whole["message"]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
        # tool results go back into the template under the names it reads
        history = body["messages"] + [whole["message"], {"role": "tool", "tool_name": "get_weather",
                                                          "content": "sunny"}]
        assert httpx.post(url + "/api/chat", json={**body, "messages": history, "stream": False}).status_code == 200


def test_text_that_is_not_a_tool_call_is_released():
    runner = FakeRunner(words=["I do not ", "need <tool", "s> here."], chat_template=HERMES_TEMPLATE)
    with app_in_thread(fake_app(runner, capabilities=["completion", "tools"])) as url:
        chunks = stream(url, "/api/chat", {"model": "fake", "tools": TOOLS,
                                          "messages": [{"role": "user", "content": "hi"}]})
        assert "".join(c["message"]["content"] for c in chunks) == "I do not need <tools> here."
