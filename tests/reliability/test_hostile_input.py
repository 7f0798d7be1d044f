"""Property tests: hostile bodies on every endpoint that takes one, against live sockets.

Generation routes run on the scripted-engine app (fake_app); model routes on a real ModelStore in a
temporary folder. Each body is a valid one mutated (fields dropped, retyped, set to huge, negative,
NaN/inf, control characters, lone surrogates, path pieces) or raw bytes (invalid JSON and UTF-8,
literal NaN, 5000-digit integers, deep nesting). The checks: `hostile.check_answer` (no 500 for a
client's mistake, Ollama-shaped errors, well-formed streams) and `hostile.check_alive` (HEAD /,
/api/ps and /metrics still answer).

RELIABILITY_EXAMPLES scales the number of examples per endpoint (CI default: 25).
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import hostile

EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

MSG = [{"role": "user", "content": "hi"}]
GENERATION = [
    ("POST", "/api/generate", {"model": "tiny", "prompt": "hi", "stream": False},
     ["model", "prompt", "stream", "options", "keep_alive", "format", "think", "raw", "system", "context",
      "images", "truncate", "suffix", "template", "logprobs", "top_logprobs"]),
    ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "stream": False},
     ["model", "messages", "stream", "options", "keep_alive", "format", "think", "tools", "truncate", "logprobs",
      "top_logprobs"]),
    ("POST", "/v1/chat/completions", {"model": "tiny", "messages": MSG},
     ["model", "messages", "stream", "max_tokens", "temperature", "top_p", "seed", "stop", "tools",
      "response_format", "stream_options", "reasoning_effort", "reasoning", "frequency_penalty",
      "presence_penalty", "logprobs", "top_logprobs"]),
    ("POST", "/v1/completions", {"model": "tiny", "prompt": "hi"},
     ["model", "prompt", "stream", "max_tokens", "temperature", "seed", "stop", "suffix", "stream_options",
      "logprobs"]),
    ("POST", "/api/embed", {"model": "tiny", "input": "hi"}, ["model", "input", "truncate", "dimensions",
                                                              "options", "keep_alive"]),
    ("POST", "/api/embeddings", {"model": "tiny", "prompt": "hi"}, ["model", "prompt", "options", "keep_alive"]),
    ("POST", "/v1/embeddings", {"model": "tiny", "input": "hi"}, ["model", "input", "encoding_format",
                                                                  "dimensions"]),
]
MODEL_ROUTES = [
    ("POST", "/api/show", {"model": "tiny"}, ["model", "name", "verbose"]),
    ("POST", "/api/copy", {"source": "tiny", "destination": "copied"}, ["source", "destination"]),
    ("DELETE", "/api/delete", {"model": "absent"}, ["model", "name"]),
    ("POST", "/api/create", {"model": "made", "from": "tiny", "stream": False},
     ["model", "name", "from", "files", "stream", "quantize", "parameters", "system", "template", "license",
      "messages", "adapters"]),
    ("POST", "/api/pull", {"model": "absent", "stream": False}, ["model", "name", "stream", "insecure"]),
]


def bodies(base: dict, fields: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(hostile.mutated(base, fields).map(hostile.encode), hostile.raw_bodies)


_CLIENT = httpx.Client(timeout=60)  # one keep-alive connection: a fresh one per request costs more than the test


def _probe(url: str, method: str, path: str, body: bytes, ps: bool = True) -> None:
    r = _CLIENT.request(method, url + path, content=body)
    hostile.check_answer(r, path, body)
    hostile.check_alive(url, ps=ps, client=_CLIENT)


@pytest.mark.parametrize("method, path, base, fields", GENERATION, ids=[e[1] for e in GENERATION])
def test_generation_routes(fake_url, method, path, base, fields):
    @SETTINGS
    @given(body=bodies(base, fields))
    def run(body: bytes) -> None:
        _probe(fake_url, method, path, body)

    run()


@pytest.mark.parametrize("method, path, base, fields", MODEL_ROUTES, ids=[e[1] for e in MODEL_ROUTES])
def test_model_routes(store_url, method, path, base, fields):
    @SETTINGS
    @given(body=bodies(base, fields))
    def run(body: bytes) -> None:
        _probe(store_url, method, path, body)

    run()
    assert httpx.get(store_url + "/api/tags").status_code == 200
    assert httpx.post(store_url + "/api/show", json={"model": "tiny"}).status_code in (200, 404)


@SETTINGS
@given(options=hostile.options(), stream=st.booleans())
def test_options_on_generate_and_chat(fake_url, options, stream):
    for path, body in (("/api/generate", {"model": "tiny", "prompt": "hi"}),
                       ("/api/chat", {"model": "tiny", "messages": MSG})):
        data = hostile.encode({**body, "stream": stream, "options": options})
        _probe(fake_url, "POST", path, data)


@SETTINGS
@given(name=st.sampled_from(hostile.NASTY_NAMES) | st.text(max_size=120))
def test_names_everywhere(store_url, name):
    for method, path, body in (("POST", "/api/generate", {"model": name, "prompt": "x", "stream": False}),
                               ("POST", "/api/chat", {"model": name, "messages": MSG, "stream": False}),
                               ("POST", "/api/show", {"model": name}),
                               ("DELETE", "/api/delete", {"model": name}),
                               ("POST", "/api/pull", {"model": name, "stream": False}),
                               ("POST", "/api/copy", {"source": name, "destination": "n2"}),
                               ("POST", "/api/embed", {"model": name, "input": "x"}),
                               ("POST", "/v1/chat/completions", {"model": name, "messages": MSG})):
        _probe(store_url, method, path, hostile.encode(body), ps=False)
    r = _CLIENT.get(store_url + "/v1/models/" + quote(name.encode("utf-8", "surrogatepass"), safe="/:"))
    hostile.check_answer(r, "/v1/models/x")


# -- big bodies -----------------------------------------------------------------------------------

TEN_MB = 10 << 20


@pytest.mark.parametrize("path, body", [
    ("/api/generate", {"model": "tiny", "prompt": "x" * TEN_MB, "stream": False}),
    ("/api/chat", {"model": "tiny", "messages": [{"role": "user", "content": "é" * (TEN_MB // 2)}], "stream": False}),
    ("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "y" * TEN_MB}]}),
])
def test_ten_megabyte_prompts_are_truncated(fake_url, path, body):
    r = httpx.post(fake_url + path, content=json.dumps(body, ensure_ascii=False).encode(), timeout=120)
    assert r.status_code == 200, r.text[:300]
    hostile.check_alive(fake_url)


# Named ids: pytest's own, the ASCII-escaped 10-MB values, took seconds to build at each collection.
@pytest.mark.parametrize("junk", [b"\xff" * TEN_MB, b"[" * TEN_MB, b'{"model": "' + b"a" * TEN_MB,
                                  b'{"k": [' + b"1," * (TEN_MB // 2) + b"1]}"],
                         ids=["invalid-utf8", "deep-nesting", "unterminated-string", "long-array"])
def test_ten_megabytes_of_junk(fake_url, junk):
    r = httpx.post(fake_url + "/api/generate", content=junk, timeout=120)
    hostile.check_answer(r, "/api/generate")
    assert 400 <= r.status_code < 500
    hostile.check_alive(fake_url)
