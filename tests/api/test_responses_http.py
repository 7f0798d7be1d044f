"""/v1/responses (OpenAI Responses, stateless, as Ollama serves it) on a scripted engine: the request
as the native chat it stands for, the Response object, the event stream, errors, and the `openai`
SDK's `client.responses`."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app
from vllama.api.openai import routes as oai_routes
from vllama.engine.base import ToolCall
from vllama.serving.events import Delta, Done, Metrics

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
BASE = {"model": "fake", "input": "Why is the sky blue?"}
RESPONSE_KEYS = [
    "id", "object", "created_at", "completed_at", "status", "incomplete_details", "model", "previous_response_id",
    "instructions", "output", "error", "tools", "tool_choice", "truncation", "parallel_tool_calls", "text", "top_p",
    "presence_penalty", "frequency_penalty", "top_logprobs", "temperature", "reasoning", "usage",
    "max_output_tokens", "max_tool_calls", "store", "background", "service_tier", "metadata", "safety_identifier",
    "prompt_cache_key"]
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city", "strict": None,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def shared():
    with shared_app(FakeStore(["fake:latest"])) as app:
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
    seen: dict[str, Any] = {"events": None}

    async def fake_generate(ctx, req):
        seen["req"] = req
        for event in seen["events"] or [Delta(content="ok"), Done("stop", Metrics(1, 1, 3, 1, 1, 1))]:
            yield event

    monkeypatch.setattr(oai_routes, "generate", fake_generate)
    return seen


def sse_events(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n\n")
    out = []
    for frame in text[:-2].split("\n\n"):
        head, data = frame.split("\n")
        assert head.startswith("event: ") and data.startswith("data: ")
        payload = json.loads(data[6:])
        assert payload["type"] == head[7:]
        assert list(payload) == sorted(payload)  # Go marshals these from maps: sorted keys
        out.append(payload)
    return out


# -- whole answers --------------------------------------------------------------------------------

def test_response_object(url):
    r = httpx.post(url + "/v1/responses", json={**BASE, "instructions": "Be brief.", "max_output_tokens": 16})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == RESPONSE_KEYS
    assert body["id"].startswith("resp_") and body["object"] == "response" and body["status"] == "completed"
    assert body["model"] == "fake" and body["instructions"] == "Be brief." and body["max_output_tokens"] == 16
    assert body["completed_at"] >= body["created_at"] > 0
    (item,) = body["output"]
    assert item["type"] == "message" and item["id"].startswith("msg_") and item["status"] == "completed"
    assert item["content"] == [{"type": "output_text", "text": "The sky is blue.", "annotations": [], "logprobs": []}]
    assert body["usage"]["output_tokens"] == 5
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + 5
    assert body["text"] == {"format": {"type": "text"}} and body["tools"] == [] and body["reasoning"] is None
    assert (body["temperature"], body["top_p"], body["truncation"]) == (1.0, 1.0, "disabled")


def test_function_calls_and_reasoning_items(url, captured):
    captured["events"] = [Delta(thinking="hmm"),
                          Delta(tool_calls=[ToolCall("call_1", 0, "get_weather", {"city": "Paris"})]),
                          Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    body = httpx.post(url + "/v1/responses", json={**BASE, "tools": [WEATHER]}).json()
    rid = body["id"]
    assert body["output"] == [
        {"id": f"rs_{rid}", "type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}],
         "encrypted_content": "hmm"},
        {"id": f"fc_{rid}_0", "type": "function_call", "status": "completed", "call_id": "call_1",
         "name": "get_weather", "arguments": '{"city":"Paris"}'},
    ]
    assert body["tools"] == [WEATHER]


# -- streams --------------------------------------------------------------------------------------

def test_stream_event_sequence(url):
    r = httpx.post(url + "/v1/responses", json={**BASE, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    events = sse_events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added"] + ["response.output_text.delta"] * 5 + [
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "The sky is blue."
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] == 5
    assert done["output"][0]["content"][0]["text"] == "The sky is blue."
    assert {e["item_id"] for e in events if "item_id" in e} == {done["output"][0]["id"]}


def test_stream_reasoning_and_function_call_events(url, captured):
    captured["events"] = [Delta(thinking="a"), Delta(thinking="b"),
                          Delta(tool_calls=[ToolCall("call_1", 0, "get_weather", {"city": "Paris"})]),
                          Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    events = sse_events(httpx.post(url + "/v1/responses", json={**BASE, "stream": True, "tools": [WEATHER]}).text)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert events[5]["text"] == "ab"
    assert events[7]["item"]["status"] == "in_progress" and events[7]["output_index"] == 1
    assert events[9]["arguments"] == '{"city":"Paris"}'
    output = events[-1]["response"]["output"]
    assert [o["type"] for o in output] == ["reasoning", "function_call"]


def test_an_error_after_the_first_byte_is_an_error_event(url, runner):
    runner.fail_after = 2
    events = sse_events(httpx.post(url + "/v1/responses", json={**BASE, "stream": True}).text)
    assert events[-1]["type"] == "error" and events[-1]["message"] == "model runner failed: boom"


# -- request translation --------------------------------------------------------------------------

def test_request_translation(url, captured):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = {
        "model": "fake", "instructions": "Be brief.", "temperature": 0.3, "top_p": 0.4, "max_output_tokens": 50,
        "tools": [WEATHER], "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema}},
        "input": [
            {"role": "user", "content": "What is this?"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "and this"},
                {"type": "input_image", "detail": "auto", "image_url": f"data:image/png;base64,{PNG}"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "thought"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
        ],
    }
    r = httpx.post(url + "/v1/responses", json=body)
    assert r.status_code == 200, r.text
    req = captured["req"]
    assert req.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is this?"},
        {"role": "user", "content": "and this", "images": [PNG]},
        {"role": "assistant", "content": "", "thinking": "thought",
         "tool_calls": [{"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "Sunny."},
    ]
    assert req.options == {"temperature": 0.3, "top_p": 0.4, "num_predict": 50}
    assert req.format == schema and req.stream is False
    assert req.tools == [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                           "parameters": WEATHER["parameters"]}}]
    echoed = r.json()
    assert echoed["text"] == {"format": {"type": "json_schema", "name": "answer", "schema": schema}}


@pytest.mark.parametrize("effort, think", [("none", False), ("low", "low"), ("high", "high"), ("max", "max"),
                                           ("xhigh", "max"), ("minimal", "low")])
def test_reasoning_effort(url, captured, effort, think):
    r = httpx.post(url + "/v1/responses", json={**BASE, "reasoning": {"effort": effort, "summary": "auto"}})
    assert captured["req"].think == think
    assert r.json()["reasoning"] == {"effort": effort, "summary": "auto"}


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, status, message", [
    ({**BASE, "model": "nothing"}, 404, "model 'nothing' not found"),
    ({**BASE, "reasoning": {"effort": "huge"}}, 400, 'invalid reasoning value: "huge"'),
    ({**BASE, "input": [{"type": "bogus"}]}, 400, 'input[0]: unknown input item type: "bogus"'),
    ({**BASE, "input": [{"content": "x"}]}, 400, "input[0]: input item missing required 'type' field"),
    ({**BASE, "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, 400,
     "file inputs are not currently supported"),
    ({**BASE, "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]}, 400,
     "failed to parse function call arguments"),
    ({**BASE, "temperature": "hot"}, 400,
     "json: cannot unmarshal string into Go struct field ResponsesRequest.temperature of type float64"),
])
def test_errors_in_openai_shape(url, body, status, message):
    r = httpx.post(url + "/v1/responses", json=body)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["message"].startswith(message) and error["param"] is None and error["code"] is None
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_no_input_loads_the_model(url, runner):
    body = httpx.post(url + "/v1/responses", json={"model": "fake"}).json()
    assert body["status"] == "completed" and body["output"][0]["content"][0]["text"] == ""
    assert not runner.requests  # loaded, nothing generated


# -- the openai SDK -------------------------------------------------------------------------------

@pytest.fixture
def client(url):
    import openai

    with openai.OpenAI(base_url=url + "/v1", api_key="vllama", max_retries=0) as c:  # closed: no keep-alive left
        yield c


@pytest.mark.sdk
def test_sdk_responses_create(client):
    response = client.responses.create(model="fake", input="Why is the sky blue?", instructions="Be brief.")
    assert response.status == "completed" and response.output_text == "The sky is blue."
    assert response.usage.output_tokens == 5


@pytest.mark.sdk
def test_sdk_stream(client):
    stream = client.responses.create(model="fake", input="Why is the sky blue?", stream=True)
    events = list(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "The sky is blue."
    assert events[-1].response.output_text == "The sky is blue."


@pytest.mark.sdk
def test_sdk_function_tool(client, captured):
    captured["events"] = [Delta(tool_calls=[ToolCall("call_1", 0, "get_weather", {"city": "Paris"})]),
                          Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    response = client.responses.create(model="fake", input="Weather in Paris?", tools=[WEATHER])
    (call,) = response.output
    assert (call.type, call.name, json.loads(call.arguments), call.call_id) == (
        "function_call", "get_weather", {"city": "Paris"}, "call_1")
    follow_up = client.responses.create(model="fake", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert follow_up.status == "completed"
    assert captured["req"].messages[-1] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}


@pytest.mark.sdk
def test_sdk_json_schema(client, captured):
    captured["events"] = [Delta(content='{"a": 1}'), Done("stop", Metrics(1, 1, 7, 1, 4, 1))]
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}
    response = client.responses.create(model="fake", input="a?",
                                       text={"format": {"type": "json_schema", "name": "a", "schema": schema,
                                                        "strict": True}})
    assert json.loads(response.output_text) == {"a": 1} and captured["req"].format == schema


@pytest.mark.sdk
def test_sdk_errors(client):
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="nothing", input="hi")
    assert err.value.status_code == 404


def test_zstd_bodies(url):
    import zstandard

    packed = zstandard.ZstdCompressor().compress(json.dumps(BASE).encode())
    r = httpx.post(url + "/v1/responses", content=packed, headers={"content-encoding": "zstd"})
    assert r.status_code == 200 and r.json()["output"][0]["content"][0]["text"] == "The sky is blue."
    r = httpx.post(url + "/v1/responses", content=b"not zstd", headers={"content-encoding": "zstd"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "failed to decompress zstd body"
