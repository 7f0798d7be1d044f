"""/v1/messages (Anthropic Messages, as Ollama serves it) on a scripted engine: the request as the
native chat it stands for, the whole answer, the event stream, errors, and the `anthropic` SDK."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore, fake_app
from tests.api.shared_app import shared_app
from tests.live_server import app_in_thread
from vllama.api.anthropic import routes as anth_routes
from vllama.engine.base import ToolCall
from vllama.serving.events import Delta, Done, Metrics

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
BASE = {"model": "fake", "max_tokens": 16, "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


@pytest.fixture(scope="module")
def shared():
    with shared_app(FakeStore(["fake:latest", "thinker:latest"])) as app:
        yield app


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def url(shared, runner):
    shared.reset(runner)
    return shared.url


@pytest.fixture
def captured(monkeypatch):
    """Replace the pipeline: record the native request, answer with scripted events."""
    seen: dict[str, Any] = {"events": None}

    async def fake_generate(ctx, req):
        seen["req"] = req
        for event in seen["events"] or [Delta(content="ok"), Done("stop", Metrics(1, 1, 3, 1, 1, 1))]:
            yield event

    monkeypatch.setattr(anth_routes, "generate", fake_generate)
    return seen


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """`event: X\\ndata: {...}\\n\\n` frames, checked for that exact framing."""
    assert text.endswith("\n\n")
    out = []
    for frame in text[:-2].split("\n\n"):
        head, data = frame.split("\n")
        assert head.startswith("event: ") and data.startswith("data: ")
        payload = json.loads(data[6:])
        assert payload["type"] == head[7:]
        out.append((head[7:], payload))
    return out


# -- whole answers --------------------------------------------------------------------------------

def test_whole_message(url):
    r = httpx.post(url + "/v1/messages", json=BASE, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.text.endswith("}\n")  # Go's json.Encoder
    body = r.json()
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "usage"]
    assert body["id"].startswith("msg_") and len(body["id"]) == 28
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "fake")
    assert body["content"] == [{"type": "text", "text": "The sky is blue."}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == 5 and body["usage"]["input_tokens"] > 0


def test_max_tokens_is_num_predict(url, runner):
    body = httpx.post(url + "/v1/messages", json={**BASE, "max_tokens": 2}).json()
    assert body["stop_reason"] == "max_tokens" and body["content"][0]["text"] == "The sky"
    assert runner.requests[-1].sampling["max_tokens"] == 2


def test_thinking_and_tool_calls_in_order(url, captured):
    captured["events"] = [Delta(thinking="hmm"), Delta(content="Let me look."),
                          Delta(tool_calls=[ToolCall("call_1", 0, "get_weather", {"city": "Paris"})]),
                          Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    body = httpx.post(url + "/v1/messages", json=BASE).json()
    assert body["content"] == [
        {"type": "thinking", "thinking": "hmm"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert body["stop_reason"] == "tool_use" and body["usage"] == {"input_tokens": 7, "output_tokens": 4}


# -- streams --------------------------------------------------------------------------------------

def test_stream_event_sequence(url):
    r = httpx.post(url + "/v1/messages", json={**BASE, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    assert r.headers["cache-control"] == "no-cache"
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert kinds == ["message_start", "content_block_start"] + ["content_block_delta"] * 5 + [
        "content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["usage"]["output_tokens"] == 0 and start["usage"]["input_tokens"] >= 1
    assert "stop_reason" not in start  # omitempty while it is unknown
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    text = "".join(e["delta"]["text"] for k, e in events if k == "content_block_delta")
    assert text == "The sky is blue."
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn"} and events[-2][1]["usage"]["output_tokens"] == 5
    assert events[-1][1] == {"type": "message_stop"}


def test_stream_blocks_for_thinking_text_and_tools(url, captured):
    captured["events"] = [Delta(thinking="a"), Delta(thinking="b"), Delta(content="c"),
                          Delta(tool_calls=[ToolCall("call_1", 0, "f", {"x": 1}), ToolCall("call_2", 1, "g", {})]),
                          Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    events = sse_events(httpx.post(url + "/v1/messages", json={**BASE, "stream": True}).text)
    seen = [(k, e.get("index"), (e.get("content_block") or e.get("delta") or {}).get("type")) for k, e in events]
    assert seen == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"), ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"), ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"), ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"), ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None), ("message_stop", None, None),
    ]
    tool_start = events[8][1]["content_block"]
    assert tool_start == {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    assert events[9][1]["delta"]["partial_json"] == '{"x":1}'
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_an_error_after_the_first_byte_is_an_error_event(url, runner):
    runner.fail_after = 2
    events = sse_events(httpx.post(url + "/v1/messages", json={**BASE, "stream": True}).text)
    assert events[-1] == ("error", {"type": "error", "error": {"type": "api_error",
                                                              "message": "model runner failed: boom"}})


# -- request translation --------------------------------------------------------------------------

def test_request_translation(url, captured):
    body = {
        "model": "fake", "max_tokens": 99, "temperature": 0.2, "top_p": 0.5, "top_k": 7,
        "stop_sequences": ["\n\n"], "system": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                      "data": PNG}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "a picture", "signature": "sig"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"what": "image"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a cat"}]},
                {"type": "text", "text": "So?"}]},
        ],
        "tools": [{"name": "look", "description": "Look closer",
                   "input_schema": {"type": "object", "properties": {"what": {"type": "string"}}}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    r = httpx.post(url + "/v1/messages", json=body)
    assert r.status_code == 200, r.text
    req = captured["req"]
    assert req.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is this?", "images": [PNG]},
        {"role": "assistant", "content": "Let me check.", "thinking": "a picture",
         "tool_calls": [{"id": "toolu_1", "function": {"name": "look", "arguments": {"what": "image"}}}]},
        {"role": "tool", "content": "a cat", "tool_call_id": "toolu_1"},
        {"role": "user", "content": "So?"},
    ]
    assert req.options == {"num_predict": 99, "temperature": 0.2, "top_p": 0.5, "top_k": 7, "stop": ["\n\n"]}
    assert req.tools == [{"type": "function", "function": {
        "name": "look", "description": "Look closer",
        "parameters": {"type": "object", "properties": {"what": {"type": "string"}}}}}]
    assert req.stream is False
    assert req.think is None  # asked of a model without the thinking capability: dropped, not refused


def test_thinking_kept_for_a_thinking_model(shared, captured):
    shared.app.state.store.models[next(k for k in shared.app.state.store.models if "thinker" in str(k))] \
        .capabilities = ["completion", "thinking"]
    httpx.post(shared.url + "/v1/messages", json={**BASE, "model": "thinker", "thinking": {"type": "enabled"}})
    assert captured["req"].think is True
    httpx.post(shared.url + "/v1/messages", json={**BASE, "model": "thinker", "output_config": {"effort": "xhigh"}})
    assert captured["req"].think == "high"
    httpx.post(shared.url + "/v1/messages", json={**BASE, "model": "thinker", "thinking": {"type": "disabled"}})
    assert captured["req"].think is False


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, status, kind, message", [
    ({**BASE, "model": ""}, 400, "invalid_request_error", "model is required"),
    ({**BASE, "max_tokens": 0}, 400, "invalid_request_error", "max_tokens is required and must be positive"),
    ({**BASE, "messages": []}, 400, "invalid_request_error", "messages is required"),
    ({**BASE, "model": "nothing"}, 404, "not_found_error", "model 'nothing' not found"),
    ({**BASE, "max_tokens": "many"}, 400, "invalid_request_error",
     "json: cannot unmarshal string into Go struct field MessagesRequest.max_tokens of type int"),
    ({**BASE, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]}]},
     400, "invalid_request_error", "invalid image source type: url. Only base64 images are supported."),
    ({**BASE, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]},
     400, "invalid_request_error", "tool_use block missing required 'id' field"),
])
def test_errors_in_anthropic_shape(url, body, status, kind, message):
    r = httpx.post(url + "/v1/messages", json=body)
    middleware = status == 400  # refused by Ollama's middleware itself: gin's c.JSON, with a charset
    ctype = "application/json; charset=utf-8" if middleware else "application/json"
    assert r.status_code == status and r.headers["content-type"] == ctype
    out = r.json()
    assert out["type"] == "error" and out["error"] == {"type": kind, "message": message}
    assert out["request_id"].startswith("req_")


def test_malformed_and_empty_bodies(url):
    r = httpx.post(url + "/v1/messages", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.post(url + "/v1/messages", content=b"").json()["error"]["message"] == "EOF"


def test_x_api_key_is_accepted(monkeypatch):
    monkeypatch.setenv("VLLAMA_API_KEY", "sekret")
    with app_in_thread(fake_app(FakeRunner())) as base:
        assert httpx.post(base + "/v1/messages", json=BASE).status_code == 401
        assert httpx.post(base + "/v1/messages", json=BASE, headers={"x-api-key": "wrong"}).status_code == 401
        ok = httpx.post(base + "/v1/messages", json=BASE, headers={"x-api-key": "sekret",
                                                                   "anthropic-version": "2023-06-01"})
        assert ok.status_code == 200
        bearer = httpx.post(base + "/v1/messages", json=BASE, headers={"authorization": "Bearer sekret"})
        assert bearer.status_code == 200
        # x-api-key stands for the key on /v1/messages only
        assert httpx.get(base + "/api/tags", headers={"x-api-key": "sekret"}).status_code == 401


# -- the anthropic SDK ----------------------------------------------------------------------------

@pytest.fixture
def client(url):
    import anthropic

    with anthropic.Anthropic(base_url=url, api_key="vllama", max_retries=0) as c:  # closed: no keep-alive left
        yield c


@pytest.mark.sdk
def test_sdk_messages_create(client):
    message = client.messages.create(model="fake", max_tokens=16, system="Be brief.",
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.role == "assistant" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == "The sky is blue."
    assert message.usage.output_tokens == 5


@pytest.mark.sdk
def test_sdk_stream(client):
    with client.messages.stream(model="fake", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "The sky is blue." and final.stop_reason == "end_turn" and final.usage.output_tokens == 5


@pytest.mark.sdk
def test_sdk_tool_use(client, captured):
    captured["events"] = [Delta(tool_calls=[ToolCall("call_1", 0, "get_weather", {"city": "Paris"})]),
                          Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    message = client.messages.create(model="fake", max_tokens=16, tools=tools,
                                     messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert (block.type, block.name, block.input, block.id) == ("tool_use", "get_weather", {"city": "Paris"}, "call_1")
    with client.messages.stream(model="fake", max_tokens=16, tools=tools,
                                messages=[{"role": "user", "content": "Weather in Paris?"}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == {"city": "Paris"}


@pytest.mark.sdk
def test_sdk_errors(client):
    import anthropic

    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="nothing", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and "not found" in err.value.message
