"""HTTP shape of /api/generate and /api/chat over a real socket, with a scripted engine."""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore, fake_app
from tests.api.shared_app import shared_app
from tests.live_server import abandon_request, app_in_thread

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
           "eval_duration")
NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture(scope="module")
def shared():
    with shared_app(FakeStore(["fake:latest"])) as app:  # what fake_app(runner) serves
        yield app


@pytest.fixture
def url(shared, runner):
    shared.reset(runner)
    return shared.url


def lines(response: httpx.Response) -> list[dict]:
    text = response.text
    assert text.endswith("\n") and "\n\n" not in text
    return [json.loads(line) for line in text.splitlines()]


def check_final(chunk: dict) -> None:
    assert chunk["done"] is True and chunk["done_reason"] in ("stop", "length")
    for key in METRICS:
        assert type(chunk[key]) is int and chunk[key] > 0, key


def test_root_and_version(url):
    r = httpx.get(url + "/")
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, "Ollama is running", "text/plain; charset=utf-8")
    assert httpx.head(url + "/").status_code == 200
    r = httpx.get(url + "/api/version")
    assert r.headers["content-type"] == JSON and isinstance(r.json()["version"], str)


def test_generate_streams_ndjson_with_final_metrics(url):
    r = httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "options": {"num_predict": 3}})
    assert r.status_code == 200 and r.headers["content-type"] == NDJSON
    chunks = lines(r)
    assert [c["response"] for c in chunks] == ["The", " sky", " is", ""]
    assert all(c["model"] == "fake" and RFC3339_Z.match(c["created_at"]) for c in chunks)
    assert [c["done"] for c in chunks] == [False, False, False, True]
    final = chunks[-1]
    check_final(final)
    assert final["done_reason"] == "length"
    assert list(final)[:6] == ["model", "created_at", "response", "done", "done_reason", "context"]
    assert final["context"][-3:] == [1, 2, 3]


def test_generate_not_streamed_concatenates(url, runner):
    r = httpx.post(url + "/api/generate", json={"model": "FAKE:latest", "prompt": "hi", "stream": False})
    assert r.status_code == 200 and r.headers["content-type"] == JSON
    body = r.json()
    assert body["model"] == "FAKE:latest" and body["response"] == "The sky is blue."
    check_final(body)
    assert body["done_reason"] == "stop"
    assert runner.requests[-1].prompt_ids == runner.tokenize("<user>hi<assistant>")


def test_generate_raw_has_no_context_and_skips_template(url, runner):
    body = httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "abc", "raw": True,
                                                   "stream": False}).json()
    assert "context" not in body
    assert runner.requests[-1].prompt_ids == runner.tokenize("abc")


def test_generate_context_is_prepended(url, runner):
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "x", "context": [7, 8], "stream": False})
    assert runner.requests[-1].prompt_ids[:2] == [7, 8]


def test_chat_stream_and_not(url, runner):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "USER", "content": "again"}]
    r = httpx.post(url + "/api/chat", json={"model": "fake", "messages": msgs, "tools": []})
    chunks = lines(r)
    assert all(c["message"]["role"] == "assistant" for c in chunks)
    assert chunks[-1]["message"]["content"] == "" and "context" not in chunks[-1]
    check_final(chunks[-1])
    assert runner.requests[-1].prompt_ids == runner.tokenize(
        "<system>be brief<user>hi<assistant>hello<user>again<assistant>")
    body = httpx.post(url + "/api/chat", json={"model": "fake", "messages": msgs[1:2], "stream": False}).json()
    assert body["message"] == {"role": "assistant", "content": "The sky is blue."}


def test_options_map_to_sampling(url, runner):
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "stream": False, "options": {
        "temperature": 0, "top_k": 5, "top_p": 0.5, "seed": 42, "stop": ["\n"], "num_predict": 2,
        "repeat_penalty": 1.2, "mirostat": 1, "tfs_z": 0.5}})
    s = runner.requests[-1].sampling
    assert (s["temperature"], s["top_k"], s["top_p"], s["seed"], s["stop"], s["max_tokens"]) == (0.0, 5, 0.5, 42, ["\n"], 2)
    assert s["repetition_penalty"] == 1.2
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "stream": False})
    s = runner.requests[-1].sampling
    assert (s["temperature"], s["top_k"], s["top_p"], s["seed"]) == (0.8, 40, 0.9, None)
    assert s["max_tokens"] == 64 - len(runner.requests[-1].prompt_ids)  # num_predict -1: fill the context


def test_format_json_and_schema(url, runner):
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "format": "json", "stream": False})
    assert runner.requests[-1].want_json and runner.requests[-1].json_schema is None
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "format": schema, "stream": False})
    assert runner.requests[-1].json_schema == schema
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "format": "", "stream": False})
    assert not runner.requests[-1].want_json


ERRORS = [
    ("/api/generate", {"prompt": "hi"}, 404, "model '' not found"),
    ("/api/chat", {"messages": [{"role": "user", "content": "hi"}]}, 400, "model is required"),
    ("/api/generate", {"model": "nope", "prompt": "hi"}, 404, "model 'nope' not found"),
    ("/api/chat", {"model": "nope", "messages": []}, 404, "model 'nope' not found"),
    ("/api/generate", {"model": "bad name!", "prompt": "hi"}, 400, "invalid model name"),
    ("/api/generate", {"model": "fake", "prompt": "hi", "options": {"temperature": "hot"}}, 400,
     'option "temperature" must be of type float32'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "options": {"stop": "x"}}, 400,
     'option "stop" must be of an array of strings'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "options": {"num_predict": "5"}}, 400,
     'option "num_predict" must be of type integer'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "keep_alive": "300"}, 400,
     'time: missing unit in duration "300"'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "think": "lots"}, 400,
     'invalid think value: "lots" (must be "high", "medium", "low", "max", true, or false)'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "format": "yaml"}, 400,
     'invalid format: "yaml"; expected "json" or a valid JSON Schema object'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "raw": True, "system": "s"}, 400,
     "raw mode does not support template, system, or context"),
    ("/api/generate", {"model": "fake", "prompt": "hi", "top_logprobs": 21}, 400,
     "top_logprobs must be between 0 and 20"),
    ("/api/generate", {"model": "fake", "prompt": "hi", "think": True}, 400, '"fake" does not support thinking'),
    ("/api/generate", {"model": "fake", "prompt": "hi", "suffix": "end"}, 400, "registry.ollama.ai/library/fake:latest does not support insert"),
    ("/api/generate", {"model": "fake", "prompt": 5}, 400,
     "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"),
    ("/api/chat", {"model": "fake", "messages": [{"role": "user", "content": [{"type": "text"}]}]}, 400, None),
    ("/api/chat", {"model": "fake", "messages": [{"role": "user", "content": "x"}],
                   "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "registry.ollama.ai/library/fake:latest does not support tools"),
]


@pytest.mark.parametrize("path,body,status,message", ERRORS)
def test_errors_are_ollama_shaped(url, runner, path, body, status, message):
    r = httpx.post(url + path, json=body)
    assert r.status_code == status and r.headers["content-type"] == JSON
    assert set(r.json()) == {"error"}
    if message:
        assert r.json()["error"] == message
    assert not runner.requests  # nothing reached the engine


def test_malformed_and_empty_bodies(url):
    r = httpx.post(url + "/api/generate", content=b'{"model": "fake", "prompt": ')
    assert (r.status_code, r.json()) == (400, {"error": "unexpected EOF"})
    r = httpx.post(url + "/api/chat", content=b"{not json")
    assert r.json() == {"error": "invalid character 'n' looking for beginning of object key string"}
    r = httpx.post(url + "/api/generate")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})
    # curl -d sends form-encoded: the body is JSON all the same
    r = httpx.post(url + "/api/generate", content=b'{"model":"fake","prompt":"hi","stream":false}',
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200


def test_router_errors_are_plain_text(url):
    r = httpx.get(url + "/api/nope")
    assert (r.status_code, r.text, r.headers["content-type"]) == (404, "404 page not found", "text/plain")
    r = httpx.get(url + "/api/generate")
    assert (r.status_code, r.text, r.headers["content-type"]) == (405, "405 method not allowed", "text/plain")


def test_load_and_unload(url, runner):
    r = httpx.post(url + "/api/generate", json={"model": "fake"})
    body = r.json()
    assert r.headers["content-type"] == JSON
    assert (body["response"], body["done"], body["done_reason"]) == ("", True, "load")
    ps = httpx.get(url + "/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["fake:latest"] and ps[0]["expires_at"].endswith("Z")
    body = httpx.post(url + "/api/chat", json={"model": "fake", "keep_alive": 0}).json()
    assert body["message"] == {"role": "assistant", "content": ""} and body["done_reason"] == "unload"
    assert httpx.get(url + "/api/ps").json() == {"models": []}
    assert not runner.requests


def test_keep_alive_zero_unloads_after_request(url, runner):
    httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "hi", "keep_alive": 0, "stream": False})
    deadline = time.monotonic() + 5
    while httpx.get(url + "/api/ps").json()["models"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(url + "/api/ps").json() == {"models": []}


def test_error_after_first_chunk_is_in_band(runner):
    runner.fail_after = 2
    with app_in_thread(fake_app(runner)) as base:
        r = httpx.post(base + "/api/generate", json={"model": "fake", "prompt": "hi"})
        chunks = lines(r)
        assert r.status_code == 200
        assert [c.get("response") for c in chunks[:2]] == ["The", " sky"]
        assert chunks[-1] == {"error": "model runner failed: boom"}
        # a failure before the first chunk is a plain HTTP error
        runner.fail_after = 0
        r = httpx.post(base + "/api/generate", json={"model": "fake", "prompt": "hi"})
        assert (r.status_code, r.json()) == (500, {"error": "model runner failed: boom"})
        assert httpx.get(base + "/").status_code == 200


def _hang_up(base: str, runner: FakeRunner, stream: bool) -> None:
    body = {"model": "fake", "prompt": "hi", "stream": stream}
    if stream:  # read the first chunk, then close the connection
        with httpx.Client() as client, client.stream("POST", base + "/api/generate", json=body) as r:
            next(r.iter_lines())
    else:  # give up before the answer is ready: once the engine has the request
        abandon_request(base, "POST", "/api/generate", json.dumps(body).encode(), until=lambda: runner.requests)


@pytest.mark.parametrize("stream", [True, False])
def test_disconnect_cancels_engine_request(runner, stream):
    runner.hold = threading.Event()  # never set: after its first chunk the request runs until cancelled
    app = fake_app(runner)
    with app_in_thread(app) as base:
        _hang_up(base, runner, stream)
        deadline = time.monotonic() + 5
        while runner.cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.cancelled == 1 and runner.finished == 0
        assert app.state.scheduler.get_loaded("fake:latest").active == 0


def test_queue_limit_answers_503_then_recovers(runner):
    runner.hold = threading.Event()  # the admitted requests stay in flight until the others are answered
    app = fake_app(runner)
    app.state.scheduler.max_queue = 2
    with app_in_thread(app) as base:
        import concurrent.futures

        body = {"model": "fake", "prompt": "hi", "stream": False}
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(httpx.post, base + "/api/generate", json=body, timeout=30) for _ in range(4)]
            answered = concurrent.futures.as_completed(futures, timeout=30)
            early = [next(answered), next(answered)]  # the two turned away (held requests cannot finish)
            runner.hold.set()
            results = [f.result() for f in futures]
        assert all(f.result().status_code == 503 for f in early)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 200, 503, 503]
        busy = next(r for r in results if r.status_code == 503)
        assert busy.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
        assert app.state.scheduler.in_flight == 0
        assert httpx.post(base + "/api/generate", json=body, timeout=30).status_code == 200
