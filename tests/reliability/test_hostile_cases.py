"""Hostile inputs that once broke the server, each pinned: the answer is a 4xx in Ollama's shape and
nothing about the server or the store is worse afterwards."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from tests.live_server import HTTP
from tests.reliability import hostile

BIG = 10**400  # an integer literal no float holds
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": False}
GEN = {"model": "tiny", "prompt": "hi", "stream": False}


def post(url: str, path: str, body, method: str = "POST") -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HTTP.request(method, url + path, content=data, timeout=30)


def refused(r: httpx.Response, status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert isinstance(message, str) and message
    return message


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat", "/api/embed", "/v1/chat/completions"])
@pytest.mark.parametrize("body", [
    b'{"model": "tiny", "options": {"seed": ' + b"9" * 5000 + b"}}",  # past Python's int-parsing limit
    b'{"model": "tiny", "keep_alive": ' + b"1" * 4400 + b"}",
])
def test_integer_literals_too_long_to_parse(fake_url, path, body):
    assert "number" in refused(post(fake_url, path, body))
    hostile.check_alive(fake_url)


def test_lone_surrogates_become_replacement_characters(store_url):
    # Go's decoder turns `\ud800` into U+FFFD; Python kept it and failed to encode the error message
    message = refused(post(store_url, "/api/delete", b'{"model": "\\ud800"}', method="DELETE"))
    assert message == 'name "\ufffd" is invalid'
    r = post(store_url, "/api/copy", b'{"source": "tiny", "destination": "x\\udfffy"}')
    assert refused(r) == 'destination "x\ufffdy" is invalid'
    r = post(store_url, "/api/chat", b'{"model": "tiny", "stream": false, '
                                     b'"messages": [{"role": "user", "content": "a\\ud800b"}]}')
    assert r.status_code == 200 and r.json()["done"] is True


@pytest.mark.parametrize("keep_alive", [1e300, 10**20, "99999999999h"])
def test_huge_keep_alive_means_forever(fake_url, keep_alive):
    # a keep_alive past Go's largest duration once made /api/ps and /metrics fail for every client
    r = post(fake_url, "/api/generate", {**GEN, "keep_alive": keep_alive})
    assert r.status_code == 200, r.text
    ps = HTTP.get(fake_url + "/api/ps").json()["models"]
    assert ps[0]["expires_at"].startswith("2318-")  # Ollama's "forever"
    hostile.check_alive(fake_url)
    assert post(fake_url, "/api/generate", {**GEN, "keep_alive": "5m"}).status_code == 200


@pytest.mark.parametrize("option", ["temperature", "top_p", "num_predict", "num_ctx", "seed", "top_k"])
def test_options_too_large_for_a_float(fake_url, option):
    message = refused(post(fake_url, "/api/generate", {**GEN, "options": {option: BIG}}))
    assert message.startswith(f'option "{option}" must be')


@pytest.mark.parametrize("field", ["temperature", "top_p", "frequency_penalty", "presence_penalty"])
def test_openai_floats_too_large(fake_url, field):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], field: BIG}
    assert refused(post(fake_url, "/v1/chat/completions", body)).startswith("json: cannot unmarshal number")
    r = post(fake_url, "/v1/completions", {"model": "tiny", "prompt": "hi", "temperature": -BIG})
    assert refused(r).startswith("json: cannot unmarshal number")


@pytest.mark.parametrize("num_ctx", [1, 2, 3, 4, 5, 6])
def test_tiny_num_ctx_still_truncates(fake_url, num_ctx):
    # the scripted tokenizer is one id per character: a 300-character prompt is 300+ ids
    r = post(fake_url, "/api/generate", {**GEN, "prompt": "x" * 300, "options": {"num_ctx": num_ctx}})
    assert r.status_code == 200, r.text
    assert r.json()["prompt_eval_count"] <= num_ctx


def test_long_prompt_truncates_unless_told_not_to(fake_url):
    r = post(fake_url, "/api/generate", {**GEN, "prompt": "x" * 500})
    assert r.status_code == 200 and r.json()["prompt_eval_count"] < 64  # FakeRunner's context
    assert refused(post(fake_url, "/api/generate", {**GEN, "prompt": "x" * 500, "truncate": False})) == \
        "the input length exceeds the context length"


# -- create and copy: nothing that would leave a model the store cannot serve --------------------

@pytest.mark.parametrize("extra", [
    {"parameters": {"num_ctx": "abc"}},
    {"parameters": {"temperature": BIG}},
    {"parameters": {"stop": "not a list"}},
    {"template": 7},
    {"system": {"a": 1}},
    {"license": [1, 2]},
    {"messages": [1, 2]},
    {"messages": [{"role": "user", "content": ["x"]}]},
])
def test_create_refuses_settings_that_would_break_the_model(store_url, extra):
    r = post(store_url, "/api/create", {"model": "broken", "from": "tiny", "stream": False, **extra})
    refused(r)
    assert HTTP.post(store_url + "/api/show", json={"model": "broken"}).status_code == 404


def test_create_keeps_good_settings(store_url):
    r = post(store_url, "/api/create", {"model": "fine", "from": "tiny", "stream": False, "system": "Be brief.",
                                        "parameters": {"num_ctx": 128, "stop": ["x"]}, "license": ["MIT", "2"],
                                        "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert HTTP.post(store_url + "/api/show", json={"model": "fine"}).status_code == 200
    assert post(store_url, "/api/generate", {**GEN, "model": "fine"}).status_code == 200


def _config_blob(url: str) -> str:
    config = json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    assert HTTP.post(url + "/api/blobs/" + digest, content=config).status_code in (200, 201)
    return digest


@pytest.mark.parametrize("paths", [
    ["a" * 300],  # longer than a file name may be
    ["/".join(["a"] * 3000)],  # longer than a path may be
    ["config.json/x"],  # config.json would be a file and a folder
    ["x", "x/y.json"],
])
def test_create_refuses_files_that_cannot_be_laid_out(store_url, paths):
    digest = _config_blob(store_url)
    files = {"config.json": digest, **{p: digest for p in paths}}
    refused(post(store_url, "/api/create", {"model": "unlaid", "files": files, "stream": False}))
    assert HTTP.post(store_url + "/api/show", json={"model": "unlaid"}).status_code == 404
    assert HTTP.get(store_url + "/api/tags").status_code == 200


@pytest.mark.parametrize("name", ["h" * 300 + "/n/m:t", "h" * 256 + "/n/m"])
def test_names_longer_than_a_file_name(store_url, name):
    # Ollama's grammar allows a 350-character host; Linux a 255-byte file name
    refused(post(store_url, "/api/copy", {"source": "tiny", "destination": name}))
    refused(post(store_url, "/api/create", {"model": name, "from": "tiny", "stream": False}))
    refused(post(store_url, "/api/pull", {"model": name, "stream": False}))
    assert refused(post(store_url, "/api/show", {"model": name}), 404).startswith("model ")
    ok = "h" * 255 + "/n/m:t"
    assert post(store_url, "/api/copy", {"source": "tiny", "destination": ok}).status_code == 200
    assert HTTP.request("DELETE", store_url + "/api/delete", json={"model": ok}).status_code == 200
