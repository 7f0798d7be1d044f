"""HTTP shape of the OpenAI-compatible /v1 routes with a scripted engine, checked against answers
recorded from a real Ollama (the golden files) and through the PyPI `openai` client."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app
from tests.live_server import abandon_request, app_in_thread
from vllama.api.app import build_app
from vllama.api.errors import APIError
from vllama.api.openai import routes as oai_routes
from vllama.api.openai import schema as oai
from vllama.engine.base import ToolCall
from vllama.engine.scheduler import Scheduler
from vllama.serving.events import Delta, Done, Metrics
from vllama.models.names import ModelName

GOLDEN_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ollama-golden"
SMOL = "smollm2:135m"
MTIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CHAT = {"model": SMOL, "messages": [{"role": "user", "content": "Why is the sky blue?"}], "max_tokens": 5,
        "seed": 1, "temperature": 0}


def store(names=("fake:latest", SMOL, "someone/custom:v1")) -> FakeStore:
    s = FakeStore(list(names))
    for model in s.models.values():  # what /v1/models reads from a LocalModel
        model.modified_at = MTIME
        model.model_name = ModelName.parse(model.name)
    return s


def make_app(runner: FakeRunner, names=("fake:latest", SMOL, "someone/custom:v1")):
    scheduler = Scheduler(lambda model: runner, max_loaded=2, check_every=0.05)
    return build_app(store(names), scheduler, keep_alive=300.0)


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture(scope="module")
def shared():
    with shared_app(store()) as app:  # what make_app(runner) serves
        yield app


@pytest.fixture
def url(shared, runner):
    shared.reset(runner)
    return shared.url


# -- golden comparisons -------------------------------------------------------------------------

# Recorded from Ollama 0.24 (reference/ollama-golden 21-24): status, content type, body as received.
RECORDED = {
    "21": (200, "application/json", (
        '{"id":"chatcmpl-937","object":"chat.completion","created":1795840459,"model":"smollm2:135m","system_'
        'fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"The answer t'
        'o this classic"},"finish_reason":"length"}],"usage":{"prompt_tokens":15,"completion_tokens":5,"total'
        '_tokens":20}}\n'
    )),
    "22": (200, "text/event-stream", (
        'data: {"id":"chatcmpl-898","object":"chat.completion.chunk","created":1795840460,"model":"smollm2:13'
        '5m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Th'
        'e"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-898","object":"chat.completion.chunk","created":1'
        '795840460,"model":"smollm2:135m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"ro'
        'le":"assistant","content":" answer"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-898","object":"c'
        'hat.completion.chunk","created":1795840460,"model":"smollm2:135m","system_fingerprint":"fp_ollama","'
        'choices":[{"index":0,"delta":{"role":"assistant","content":" to"},"finish_reason":null}]}\n\ndata: {"i'
        'd":"chatcmpl-898","object":"chat.completion.chunk","created":1795840461,"model":"smollm2:135m","syst'
        'em_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" this"},"fi'
        'nish_reason":null}]}\n\ndata: {"id":"chatcmpl-898","object":"chat.completion.chunk","created":17958404'
        '61,"model":"smollm2:135m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"as'
        'sistant","content":" classic"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-898","object":"chat.co'
        'mpletion.chunk","created":1795840461,"model":"smollm2:135m","system_fingerprint":"fp_ollama","choice'
        's":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"length"}]}\n\ndata: [DONE]\n\n'
    )),
    "22b": (200, "text/event-stream", (
        'data: {"id":"chatcmpl-200","object":"chat.completion.chunk","created":1795840461,"model":"smollm2:13'
        '5m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Th'
        'e"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-200","object":"chat.completion.chunk","created":1'
        '795840461,"model":"smollm2:135m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"ro'
        'le":"assistant","content":" answer"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-200","object":"c'
        'hat.completion.chunk","created":1795840461,"model":"smollm2:135m","system_fingerprint":"fp_ollama","'
        'choices":[{"index":0,"delta":{"role":"assistant","content":" to"},"finish_reason":null}]}\n\ndata: {"i'
        'd":"chatcmpl-200","object":"chat.completion.chunk","created":1795840464,"model":"smollm2:135m","syst'
        'em_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" this"},"fi'
        'nish_reason":null}]}\n\ndata: {"id":"chatcmpl-200","object":"chat.completion.chunk","created":17958404'
        '67,"model":"smollm2:135m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"as'
        'sistant","content":" classic"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-200","object":"chat.co'
        'mpletion.chunk","created":1795840467,"model":"smollm2:135m","system_fingerprint":"fp_ollama","choice'
        's":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"length"}]}\n\ndata: {"id":"c'
        'hatcmpl-200","object":"chat.completion.chunk","created":1795840467,"model":"smollm2:135m","system_fi'
        'ngerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":15,"completion_tokens":5,"total_tokens"'
        ':20}}\n\ndata: [DONE]\n\n'
    )),
    "22c": (404, "application/json", (
        '{"error":{"message":"model \'no-such-model\' not found","type":"not_found_error","param":null,"code":n'
        'ull}}\n'
    )),
    "22d": (200, "application/json", (
        '{"id":"chatcmpl-202","object":"chat.completion","created":1795840499,"model":"smollm2:135m","system_'
        'fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"{\\n  \\"name\\'
        '": \\"John\\",\\n  \\"age\\": 30,\\n\\"gender\\": \\"Male\\"\\n}"},"finish_reason":"stop"}],"usage":{"prompt_to'
        'kens":19,"completion_tokens":26,"total_tokens":45}}\n'
    )),
    "23": (200, "application/json", (
        '{"object":"list","data":[{"id":"smollm2:135m","object":"model","created":1795840322,"owned_by":"libr'
        'ary"}]}\n'
    )),
    "23b": (200, "application/json", (
        '{"id":"smollm2:135m","object":"model","created":1795840322,"owned_by":"library"}\n'
    )),
    "24": (200, "application/json", (
        '{"id":"cmpl-950","object":"text_completion","created":1795840501,"model":"smollm2:135m","system_fing'
        'erprint":"fp_ollama","choices":[{"text":"Paris, the City of","index":0,"finish_reason":"length"}],"u'
        'sage":{"prompt_tokens":14,"completion_tokens":5,"total_tokens":19}}\n'
    )),
}


def golden(name: str) -> tuple[int, str, str]:
    status, ctype, body = RECORDED[name]
    return status, ctype, "".join(body)


@pytest.mark.skipif(not GOLDEN_DIR.is_dir(), reason="the reference recordings are not next to this checkout")
def test_recorded_bodies_are_the_reference_files():
    for name in RECORDED:
        path = next(GOLDEN_DIR.glob(name + "-*.txt"))
        response = path.read_text().split("\n----\n")[1]
        head, body = response.split("\n\n", 1)
        assert int(head.split()[1]) == RECORDED[name][0] and f"Content-Type: {RECORDED[name][1]}\n" in head + "\n"
        assert body == golden(name)[2]


def shape(value: Any) -> Any:
    """Keys and value types, recursively; lists by the shapes of their items."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def sse_frames(body: str) -> list[Any]:
    assert body.endswith("data: [DONE]\n\n")
    frames = body.split("\n\n")[:-1]
    assert all(f.startswith("data: ") for f in frames)
    return [f[6:] if f == "data: [DONE]" else json.loads(f[6:]) for f in frames]


@pytest.mark.parametrize("name, path, body", [
    ("21", "/v1/chat/completions", CHAT),
    ("22d", "/v1/chat/completions", {**CHAT, "max_tokens": 40, "response_format": {"type": "json_object"}}),
    ("22c", "/v1/chat/completions", {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}),
    ("24", "/v1/completions", {"model": SMOL, "prompt": "The capital of France is", "max_tokens": 5, "seed": 1,
                                "temperature": 0}),
])
def test_json_answers_match_golden(url, name, path, body):
    status, ctype, recorded = golden(name)
    r = httpx.post(url + path, json=body)
    assert (r.status_code, r.headers["content-type"]) == (status, ctype)
    assert r.text.endswith("}\n") and recorded.endswith("}\n")
    ours, theirs = r.json(), json.loads(recorded)
    assert shape(ours) == shape(theirs)
    for key in ("object", "model", "system_fingerprint"):
        assert ours.get(key) == theirs.get(key)
    if "error" in theirs:
        assert ours == theirs
    else:
        assert ours["id"].split("-")[0] == theirs["id"].split("-")[0]
        assert ours["choices"][0]["finish_reason"] == theirs["choices"][0]["finish_reason"]


def newest_framing(frames: list[Any]) -> list[Any]:
    """Ollama 0.24's chunks as the newest Ollama frames them: the role on the first chunk only,
    and the finish chunk an empty delta (0.24 repeated the role and sent `content: ""` there)."""
    out = []
    for i, frame in enumerate(frames):
        if isinstance(frame, dict) and frame["choices"]:
            choice = frame["choices"][0]
            delta = {} if choice["finish_reason"] else dict(choice["delta"])
            if i > 0:
                delta.pop("role", None)
            frame = {**frame, "choices": [{**choice, "delta": delta}]}
        out.append(frame)
    return out


@pytest.mark.parametrize("name, extra", [("22", {}), ("22b", {"stream_options": {"include_usage": True}})])
def test_streams_match_golden(url, name, extra):
    status, ctype, recorded = golden(name)
    r = httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True, **extra})
    assert (r.status_code, r.headers["content-type"]) == (status, ctype) == (200, "text/event-stream")
    ours, theirs = sse_frames(r.text), newest_framing(sse_frames(recorded))
    # five tokens, the finish chunk, (usage,) [DONE]: the scripted engine gives as many pieces
    assert [shape(f) for f in ours] == [shape(f) for f in theirs]
    assert [f["choices"][0]["finish_reason"] if isinstance(f, dict) and f["choices"] else None for f in ours] == \
           [f["choices"][0]["finish_reason"] if isinstance(f, dict) and f["choices"] else None for f in theirs]
    chunks = [f for f in ours if isinstance(f, dict)]
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
    # the newest Ollama names the role on the first chunk only
    assert [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"]][:2] == ["assistant", None]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "The sky is blue."


@pytest.mark.parametrize("name, path", [("23", "/v1/models"), ("23b", "/v1/models/" + SMOL)])
def test_models_match_golden(url, name, path):
    status, ctype, recorded = golden(name)
    r = httpx.get(url + path)
    assert (r.status_code, r.headers["content-type"]) == (status, ctype)
    theirs = json.loads(recorded)
    ours = r.json()
    if "data" in theirs:
        assert shape(ours["data"][0]) == shape(theirs["data"][0])
        ours = next(m for m in ours["data"] if m["id"] == SMOL)
        theirs = theirs["data"][0]
    assert {**ours, "created": 0} == {**theirs, "created": 0}
    assert ours["created"] == int(MTIME.timestamp())


# -- models --------------------------------------------------------------------------------------

def test_models_list_and_retrieve(url):
    data = httpx.get(url + "/v1/models").json()["data"]
    assert sorted((m["id"], m["owned_by"]) for m in data) == [
        ("fake:latest", "library"), ("smollm2:135m", "library"), ("someone/custom:v1", "someone")]
    r = httpx.get(url + "/v1/models/someone/custom:v1")
    assert r.json() == {"id": "someone/custom:v1", "object": "model", "created": int(MTIME.timestamp()),
                        "owned_by": "someone"}
    assert httpx.get(url + "/v1/models/FAKE").json()["id"] == "FAKE"  # echoed as written
    r = httpx.get(url + "/v1/models/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "model 'nothing' not found", "type": "not_found_error",
                                  "param": None, "code": None}}


def test_models_list_empty_is_a_list():
    with app_in_thread(make_app(FakeRunner(), names=())) as base:
        assert httpx.get(base + "/v1/models").json() == {"object": "list", "data": []}


# -- request translation ------------------------------------------------------------------------

@pytest.fixture
def captured(monkeypatch):
    """Replace the serving pipeline: record the parsed native request, answer with scripted events."""
    seen: dict[str, Any] = {"chunks": None}

    async def fake_generate(ctx, req):
        seen["req"] = req
        for event in seen["chunks"] or [Delta(content="ok"), Done("stop", Metrics(0, 0, 3, 0, 1, 0))]:
            yield event

    monkeypatch.setattr(oai_routes, "generate", fake_generate)
    return seen


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(url + path, json=body)


def test_sampling_defaults_and_mapping(url, runner):
    post(url, "/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}]})
    sampling = runner.requests[-1].sampling
    assert (sampling["temperature"], sampling["top_p"]) == (1.0, 1.0)  # not the native 0.8 / 0.9
    post(url, "/v1/chat/completions", {
        "model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0.5,
        "top_p": 0.5, "seed": 7, "stop": "x", "frequency_penalty": 0.25, "presence_penalty": 0.5,
        "max_completion_tokens": 1})
    sampling = runner.requests[-1].sampling
    assert (sampling["max_tokens"], sampling["temperature"], sampling["top_p"], sampling["seed"]) == (2, 0.5, 0.5, 7)
    assert (sampling["stop"], sampling["frequency_penalty"], sampling["presence_penalty"]) == (["x"], 0.25, 0.5)
    post(url, "/v1/completions", {"model": "fake", "prompt": "hi", "top_p": 0, "stop": ["a", "b"]})
    sampling = runner.requests[-1].sampling
    assert (sampling["temperature"], sampling["top_p"], sampling["stop"]) == (1.0, 1.0, ["a", "b"])


def test_response_format(url, runner):
    base = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    post(url, "/v1/chat/completions", {**base, "response_format": {"type": "json_object"}})
    assert runner.requests[-1].want_json and not runner.requests[-1].json_schema
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    post(url, "/v1/chat/completions", {**base, "response_format": {"type": "json_schema",
                                                                   "json_schema": {"name": "x", "schema": schema}}})
    assert runner.requests[-1].json_schema == schema
    post(url, "/v1/chat/completions", {**base, "response_format": {"type": "text"}})
    assert not runner.requests[-1].want_json


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def test_message_translation(url, captured):
    body = {"model": "fake", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                                     {"type": "image_url", "image_url": f"data:;base64,{PNG}"}]},
        {"role": "assistant", "content": None, "reasoning": "hmm",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "name": "explicit", "content": "x"},
    ], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "reasoning_effort": "minimal", "logprobs": True, "top_logprobs": 3}
    r = post(url, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    req = captured["req"]
    assert req.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is this?"},
        {"role": "user", "content": "", "images": [PNG]},
        {"role": "user", "content": "", "images": [PNG]},
        {"role": "assistant", "content": "", "thinking": "hmm",
         "tool_calls": [{"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": "call_1"},
        {"role": "tool", "content": "x", "tool_name": "explicit"},
    ]
    assert req.tools == body["tools"] and req.think == "low" and req.stream is False
    assert (req.logprobs, req.top_logprobs) == (True, 3)
    assert (req.options["temperature"], req.options["top_p"]) == (1.0, 1.0)


@pytest.mark.parametrize("body, think", [
    ({"reasoning_effort": "none"}, False), ({"reasoning_effort": "high"}, "high"),
    ({"reasoning_effort": "xhigh"}, "max"), ({"reasoning_effort": "ultra"}, "max"),
    ({"reasoning": {"effort": "medium"}}, "medium"),
    ({"reasoning": {"effort": "max"}, "reasoning_effort": "low"}, "max"),
    ({}, None),
])
def test_reasoning_effort(body, think):
    assert oai.chat_body({"model": "m", "messages": [], **body})["think"] == think


def test_completion_translation(url, captured):
    r = post(url, "/v1/completions", {"model": "fake", "prompt": "hi", "suffix": "end", "logprobs": 2,
                                      "max_tokens": 4, "seed": 3})
    assert r.status_code == 200
    req = captured["req"]
    assert (req.prompt, req.suffix, req.logprobs, req.top_logprobs) == ("hi", "end", True, 2)
    assert req.options == {"num_predict": 4, "temperature": 1.0, "seed": 3, "frequency_penalty": 0.0,
                           "presence_penalty": 0.0, "top_p": 1.0}


OAI_ERROR = {"type": "invalid_request_error", "param": None, "code": None}


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/chat/completions", {"model": "fake", "messages": []}, 400, "[] is too short - 'messages'"),
    ("/v1/chat/completions", {"model": "fake"}, 400, "[] is too short - 'messages'"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 400, "model is required"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user"}]}, 400,
     "invalid message content type: <nil>"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
     400, "invalid message format"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, 400,
     "image URLs are not currently supported, please use base64 encoded data instead"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,AAAA"}}]}]}, 400, "invalid image input"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]}]}, 400, "invalid image input"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": "{oops"}}]}]}, 400, "invalid tool call arguments"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "stop": ["a", 1]},
     400, "invalid type for 'stop' field: float64"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                              "reasoning_effort": "huge"}, 400,
     "invalid reasoning value: 'huge' (must be \"none\", \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", "
     "\"max\" or \"ultra\")"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "5"},
     400, "json: cannot unmarshal string into Go struct field ChatCompletionRequest.max_tokens of type int"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                              "top_logprobs": 21}, 400, "top_logprobs must be between 0 and 20"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                              "reasoning_effort": "high"}, 400, '"fake" does not support thinking'),
    ("/v1/completions", {"model": "fake", "prompt": ["a", "b"]}, 400,
     "json: cannot unmarshal array into Go struct field CompletionRequest.prompt of type string"),
    ("/v1/completions", {"prompt": "hi"}, 404, "model '' not found"),
    ("/v1/completions", {"model": "nope", "prompt": "hi"}, 404, "model 'nope' not found"),
    ("/v1/completions", {"model": "bad name!", "prompt": "hi"}, 400, "invalid model name"),
])
def test_errors_are_openai_shaped(url, path, body, status, message):
    r = post(url, path, body)
    # what Ollama's /v1 middleware refuses itself is gin's c.JSON (a charset); the native handler's
    # refusals pass the middleware's writer (none)
    handler = status == 404 or message in ("model is required", "top_logprobs must be between 0 and 20",
                                           '"fake" does not support thinking', "invalid model name")
    ctype = "application/json" if handler else "application/json; charset=utf-8"
    assert (r.status_code, r.headers["content-type"]) == (status, ctype)
    expected_type = {400: "invalid_request_error", 404: "not_found_error"}[status]
    assert r.json() == {"error": {**OAI_ERROR, "message": message, "type": expected_type}}


def test_bodies_that_do_not_parse(url):
    r = httpx.post(url + "/v1/chat/completions", content=b"")
    assert (r.status_code, r.json()["error"]["message"]) == (400, "EOF")
    r = httpx.post(url + "/v1/completions", content=b"{bad")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    # form-encoded (curl -d) JSON is still JSON
    r = httpx.post(url + "/v1/completions", content=b'{"model":"fake","prompt":"hi"}',
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == "The sky is blue."


def test_native_routes_keep_native_errors_and_router_is_plain_text(url):
    r = post(url, "/api/chat", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert r.json() == {"error": "model 'nope' not found"}
    r = httpx.get(url + "/v1/nothing")
    assert (r.status_code, r.text) == (404, "404 page not found")
    assert httpx.get(url + "/v1/chat/completions").status_code == 405


# -- answer translation -------------------------------------------------------------------------

def test_completion_not_streamed(url):
    r = post(url, "/v1/completions", {"model": "fake", "prompt": "hi", "max_tokens": 2})
    body = r.json()
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert body["choices"] == [{"text": "The sky", "index": 0, "finish_reason": "length"}]
    usage = body["usage"]
    assert usage["completion_tokens"] == 2 and usage["total_tokens"] == usage["prompt_tokens"] + 2


def test_completion_stream_usage_on_every_chunk(url):
    r = post(url, "/v1/completions", {"model": "fake", "prompt": "hi", "stream": True,
                                      "stream_options": {"include_usage": True}})
    assert r.headers["content-type"] == "text/event-stream"
    frames = sse_frames(r.text)
    chunks, usage_chunk = frames[:-2], frames[-2]
    assert [c["choices"][0]["text"] for c in chunks] == ["The", " sky", " is", " blue", ".", ""]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 5 + ["stop"]
    assert all(c["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} for c in chunks)
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 5
    r = post(url, "/v1/completions", {"model": "fake", "prompt": "hi", "stream": True})
    assert all("usage" not in f for f in sse_frames(r.text)[:-1])


def test_empty_prompt_only_loads(url, runner):
    body = post(url, "/v1/completions", {"model": "fake", "prompt": ""}).json()
    assert body["choices"] == [{"text": "", "index": 0, "finish_reason": "load"}] and not runner.requests
    body = post(url, "/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": []}]}).json()
    assert body["choices"][0]["finish_reason"] == "load"


THINK_AND_CALL = [
    Delta(thinking="Let me"),
    Delta(content="Hi", thinking=" think.", logprobs=[{"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}]),
    Delta(tool_calls=[ToolCall(id="call_abc", index=0, name="get_weather", arguments={"city": "Paris"})]),
    Done("stop", Metrics(0, 0, 10, 0, 7, 0)),
]


def test_reasoning_and_tool_calls_not_streamed(url, captured):
    captured["chunks"] = THINK_AND_CALL
    body = post(url, "/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}).json()
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hi", "reasoning": "Let me think.", "tool_calls": [
        {"id": "call_abc", "index": 0, "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}
    assert choice["finish_reason"] == "tool_calls"
    assert choice["logprobs"] == {"content": THINK_AND_CALL[1].logprobs}
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}


def test_reasoning_and_tool_calls_streamed(url, captured):
    captured["chunks"] = THINK_AND_CALL
    r = post(url, "/v1/chat/completions", {"model": "fake", "stream": True,
                                           "messages": [{"role": "user", "content": "hi"}]})
    chunks = [f for f in sse_frames(r.text) if isinstance(f, dict)]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": "", "reasoning": "Let me"}
    # reasoning and content in one native chunk become two chunks; the newest Ollama names the
    # role on the first chunk only, and ends with an empty delta
    assert deltas[1] == {"content": "", "reasoning": " think."}
    assert deltas[2] == {"content": "Hi"}
    assert deltas[4] == {}
    assert chunks[2]["choices"][0]["logprobs"] == {"content": THINK_AND_CALL[1].logprobs}
    assert deltas[3]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
    # the call was sent earlier: the finish chunk still says tool_calls
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "tool_calls"]


def test_tool_calls_get_ids():
    calls = oai.tool_calls_out([ToolCall(id="", index=0, name="f", arguments={})])
    assert calls[0]["id"].startswith("call_") and len(calls[0]["id"]) == 13
    assert calls[0]["function"] == {"name": "f", "arguments": "{}"} and calls[0]["index"] == 0


def test_error_mid_stream_is_an_sse_error_event(runner):
    runner.fail_after = 2
    with app_in_thread(make_app(runner)) as base:
        r = post(base, "/v1/chat/completions", {"model": "fake", "stream": True,
                                                "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        frames = r.text.split("\n\n")[:-1]
        assert [json.loads(f[6:])["choices"][0]["delta"]["content"] for f in frames[:2]] == ["The", " sky"]
        assert json.loads(frames[-1][6:]) == {"error": {"message": "model runner failed: boom", "type": "api_error",
                                                        "param": None, "code": None}}
        assert "[DONE]" not in r.text
        runner.fail_after = 0  # before the first chunk: a plain HTTP error
        r = post(base, "/v1/chat/completions", {"model": "fake", "stream": True,
                                                "messages": [{"role": "user", "content": "hi"}]})
        assert (r.status_code, r.json()["error"]["type"]) == (500, "api_error")
        r = post(base, "/v1/completions", {"model": "fake", "prompt": "hi"})
        assert r.json()["error"]["message"] == "model runner failed: boom"


def test_chunks_are_flushed_as_they_come(runner):
    runner.hold = threading.Event()  # the chunks after the first are made only once it has arrived
    with app_in_thread(make_app(runner)) as base:
        start = time.monotonic()
        with httpx.stream("POST", base + "/v1/chat/completions", json={
                "model": "fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
            lines = r.iter_lines()
            first = next(lines)
            assert first.startswith("data: ") and time.monotonic() - start < 1.2
            runner.hold.set()
            rest = [line for line in lines if line]
        assert len(rest) == 6 and rest[-1] == "data: [DONE]"


@pytest.mark.parametrize("stream", [True, False])
def test_disconnect_cancels_engine_request(runner, stream):
    runner.hold = threading.Event()  # never set: after its first chunk the request runs until cancelled
    app = make_app(runner)
    body = {"model": "fake", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with app_in_thread(app) as base:
        if stream:
            with httpx.Client() as client, client.stream("POST", base + "/v1/chat/completions", json=body) as r:
                next(r.iter_lines())
        else:  # give up before the answer is ready: once the engine has the request
            abandon_request(base, "POST", "/v1/chat/completions", json.dumps(body).encode(),
                            until=lambda: runner.requests)
        deadline = time.monotonic() + 5
        while runner.cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.cancelled == 1 and runner.finished == 0
        assert app.state.scheduler.get_loaded("fake:latest").active == 0


def test_openai_error_helper():
    r = oai_routes.openai_error(503, "busy")
    assert r.status_code == 503 and json.loads(r.body) == {"error": {"message": "busy", "type": "api_error",
                                                                     "param": None, "code": None}}

    @oai_routes.openai_errors
    async def handler(request):
        raise APIError(404, "gone")

    assert json.loads(asyncio.run(handler(None)).body)["error"]["type"] == "not_found_error"


# -- the PyPI openai client ---------------------------------------------------------------------

@pytest.mark.sdk
def test_openai_client(url):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="ollama", max_retries=0)
    r = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert r.choices[0].message.content == "The sky is" and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3 and r.system_fingerprint == "fp_ollama"
    stream = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The sky is blue."
    assert chunks[-1].usage.completion_tokens == 5
    r = client.completions.create(model="fake", prompt="hi", max_tokens=2)
    assert r.choices[0].text == "The sky" and r.usage.total_tokens > 2
    text = "".join(c.choices[0].text for c in client.completions.create(model="fake", prompt="hi", stream=True)
                   if c.choices)
    assert text == "The sky is blue."
    assert {m.id for m in client.models.list()} == {"fake:latest", SMOL, "someone/custom:v1"}
    assert client.models.retrieve(SMOL).owned_by == "library"
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and "model 'nope' not found" in str(err.value)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fake", messages=[])


@pytest.mark.sdk
def test_openai_client_raises_on_mid_stream_error(runner):
    import openai

    runner.fail_after = 2
    with app_in_thread(make_app(runner)) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}],
                                                stream=True)
        with pytest.raises(openai.APIError, match="boom"):
            list(stream)


@pytest.mark.sdk
def test_async_openai_client(url):
    import openai

    async def main():
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        answers = await asyncio.gather(*[
            client.chat.completions.create(model="fake", messages=[{"role": "user", "content": f"hi {i}"}])
            for i in range(3)])
        await client.close()
        return answers

    assert [a.choices[0].message.content for a in asyncio.run(main())] == ["The sky is blue."] * 3
