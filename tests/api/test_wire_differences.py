"""Smaller wire differences found against a live Ollama 0.24 (issue 12, item 9), over a real socket
with the fake engine: embedding routes' not-found wording, the /v1 middleware's content type, and
decode errors that name Ollama's Go structs."""

from __future__ import annotations

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app

GIN_JSON = "application/json; charset=utf-8"  # gin's c.JSON: what the /v1 middleware refuses itself
WRITER_JSON = "application/json"  # the middleware's writer: what the native handler refuses


@pytest.fixture(scope="module")
def shared():
    with shared_app(FakeStore(["fake:latest"])) as app:
        yield app


@pytest.fixture
def url(shared):
    shared.reset(FakeRunner())
    return shared.url


# -- a. not found on the embedding routes: handleScheduleError's words ---------------------------

@pytest.mark.parametrize("path, body", [
    ("/api/embed", {"model": "nope", "input": "x"}),
    ("/api/embed", {"model": "nope"}),
    ("/api/embeddings", {"model": "nope", "prompt": "x"}),
])
def test_native_embedding_routes_say_try_pulling(url, path, body):
    r = httpx.post(url + path, json=body)
    assert (r.status_code, r.json()) == (404, {"error": 'model "nope" not found, try pulling it first'})
    assert r.headers["content-type"] == GIN_JSON


def test_v1_embeddings_says_try_pulling_in_openai_shape(url):
    r = httpx.post(url + "/v1/embeddings", json={"model": "nope", "input": "x"})
    assert r.status_code == 404 and r.headers["content-type"] == WRITER_JSON
    assert r.json() == {"error": {"message": 'model "nope" not found, try pulling it first',
                                  "type": "not_found_error", "param": None, "code": None}}
    assert r.text.endswith("}\n")  # the writer's json.Encoder


def test_generate_and_chat_keep_their_own_wording(url):
    for path, body in (("/api/generate", {"model": "nope", "prompt": "x"}),
                       ("/api/chat", {"model": "nope", "messages": [{"role": "user", "content": "x"}]})):
        assert httpx.post(url + path, json=body).json() == {"error": "model 'nope' not found"}


# -- b. /v1 errors: the middleware's own refusals carry gin's charset ------------------------------

@pytest.mark.parametrize("path, body, status", [
    ("/v1/chat/completions", {"model": "fake", "messages": []}, 400),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": "5"}, 400),
    ("/v1/completions", {"model": "fake", "prompt": ["a", "b"]}, 400),
    ("/v1/embeddings", {"model": "fake", "input": []}, 400),
    ("/v1/embeddings", {"model": "fake", "input": "x", "encoding_format": "int8"}, 400),
    ("/v1/responses", {"model": "fake", "input": "x", "temperature": "hot"}, 400),
    ("/v1/messages", {"model": "fake", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, 400),
])
def test_middleware_refusals_are_gins_json(url, path, body, status):
    r = httpx.post(url + path, json=body)
    assert (r.status_code, r.headers["content-type"]) == (status, GIN_JSON)
    assert r.text.endswith("}")  # c.JSON writes no newline
    assert "error" in r.json()


def test_a_body_that_does_not_decode_is_the_middlewares(url):
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages"):
        r = httpx.post(url + path, content=b"{bad")
        assert (r.status_code, r.headers["content-type"]) == (400, GIN_JSON), path


@pytest.mark.parametrize("path, body, status", [
    ("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 400),  # ChatHandler's
    ("/v1/completions", {"model": "nope", "prompt": "hi"}, 404),
    ("/v1/embeddings", {"model": "fake", "input": [[1, 2]]}, 400),  # EmbedHandler's input check
    ("/v1/messages", {"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, 404),
])
def test_handler_refusals_pass_the_writer(url, path, body, status):
    r = httpx.post(url + path, json=body)
    assert (r.status_code, r.headers["content-type"]) == (status, WRITER_JSON)
    assert r.text.endswith("}\n")


def test_recorded_v1_not_found_is_unchanged(url):
    """Golden 22c: `application/json`, a 106-byte body ending in a newline."""
    r = httpx.post(url + "/v1/chat/completions",
                   json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})
    assert (r.status_code, r.headers["content-type"], len(r.content)) == (404, WRITER_JSON, 106)


# -- c. type errors name the Go struct -------------------------------------------------------------

def unmarshal(got: str, where: str, go_type: str) -> str:
    return f"json: cannot unmarshal {got} into Go struct field {where} of type {go_type}"


MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("method, path, body, message", [
    ("POST", "/api/generate", {"model": "fake", "prompt": 3}, unmarshal("number", "GenerateRequest.prompt", "string")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "stream": "no"},
     unmarshal("string", "GenerateRequest.stream", "bool")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "options": "hot"},
     unmarshal("string", "GenerateRequest.options", "map[string]interface {}")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "context": [1, "a"]},
     unmarshal("string", "GenerateRequest.context", "int")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "context": [1.5]},
     unmarshal("number 1.5", "GenerateRequest.context", "int")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "images": [1]},
     unmarshal("number", "GenerateRequest.images", "api.ImageData")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "images": "abc"},
     unmarshal("string", "GenerateRequest.images", "[]api.ImageData")),
    ("POST", "/api/generate", {"model": "fake", "prompt": "x", "top_logprobs": "2"},
     unmarshal("string", "GenerateRequest.top_logprobs", "int")),
    ("POST", "/api/chat", {"model": 1, "messages": MSG}, unmarshal("number", "ChatRequest.model", "string")),
    ("POST", "/api/chat", {"model": "fake", "messages": "hi"},
     unmarshal("string", "ChatRequest.messages", "[]api.Message")),
    ("POST", "/api/chat", {"model": "fake", "messages": ["hi"]},
     unmarshal("string", "ChatRequest.messages", "api.Message")),
    ("POST", "/api/chat", {"model": "fake", "messages": [{"role": "user", "content": 3}]},
     unmarshal("number", "ChatRequest.messages.content", "string")),
    ("POST", "/api/chat", {"model": "fake", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     unmarshal("array", "ChatRequest.messages.content", "string")),
    ("POST", "/api/chat", {"model": "fake", "messages": [{"role": 1, "content": "x"}]},
     unmarshal("number", "ChatRequest.messages.role", "string")),
    ("POST", "/api/chat", {"model": "fake", "messages": [{"role": "user", "content": "x", "images": [{}]}]},
     unmarshal("object", "ChatRequest.messages.images", "api.ImageData")),
    ("POST", "/api/chat", {"model": "fake", "messages": MSG, "tools": {}},
     unmarshal("object", "ChatRequest.tools", "api.Tools")),
    ("POST", "/api/chat", {"model": "fake", "messages": MSG, "tools": ["f"]},
     unmarshal("string", "ChatRequest.tools", "api.Tool")),
    ("POST", "/api/embed", {"model": "fake", "input": "x", "dimensions": "8"},
     unmarshal("string", "EmbedRequest.dimensions", "int")),
    ("POST", "/api/embed", {"model": "fake", "input": "x", "truncate": "yes"},
     unmarshal("string", "EmbedRequest.truncate", "bool")),
    ("POST", "/api/embeddings", {"model": "fake", "prompt": 1},
     unmarshal("number", "EmbeddingRequest.prompt", "string")),
    ("POST", "/api/embeddings", {"model": "fake", "prompt": "x", "options": []},
     unmarshal("array", "EmbeddingRequest.options", "map[string]interface {}")),
    ("POST", "/api/pull", {"model": 3}, unmarshal("number", "PullRequest.model", "string")),
    ("POST", "/api/pull", {"model": "x", "stream": 1}, unmarshal("number", "PullRequest.stream", "bool")),
    ("POST", "/api/show", {"model": True}, unmarshal("bool", "ShowRequest.model", "string")),
    ("DELETE", "/api/delete", {"name": 1}, unmarshal("number", "DeleteRequest.name", "string")),
    ("POST", "/api/copy", {"source": 1, "destination": "y"}, unmarshal("number", "CopyRequest.source", "string")),
    ("POST", "/api/create", {"model": "x", "from": 1}, unmarshal("number", "CreateRequest.from", "string")),
    ("POST", "/api/create", {"model": "x", "files": []},
     unmarshal("array", "CreateRequest.files", "map[string]string")),
])
def test_type_errors_name_the_struct(url, method, path, body, message):
    r = httpx.request(method, url + path, json=body)
    assert (r.status_code, r.json()) == (400, {"error": message})


def test_embeddings_legacy_ignores_fields_its_struct_lacks(url):
    """EmbeddingRequest has no truncate or dimensions: Go's decoder skips them whatever their type."""
    body = {"model": "nope", "prompt": "x", "truncate": "yes", "dimensions": "x"}
    r = httpx.post(url + "/api/embeddings", json=body)
    assert r.status_code == 404
