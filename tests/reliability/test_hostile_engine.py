"""Hostile requests against the real engine (the session's `vllama serve`, model `tiny`): what the
scripted engine cannot show, since vLLM validates sampling parameters, token ids and JSON schemas
itself. None of it is a 500, none of it leaves a request in the engine."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.stress_load import settle
from tests.conftest import TINY
from tests.reliability import hostile

pytestmark = pytest.mark.engine

GEN = {"model": TINY, "prompt": "hi", "stream": False}
FEW = {"num_predict": 4}
ENGINE_SETTINGS = settings(max_examples=15, deadline=None, database=None, derandomize=True,
                           suppress_health_check=list(HealthCheck))


def ask(url: str, body: dict, path: str = "/api/generate") -> httpx.Response:
    r = httpx.post(url + path, content=json.dumps(body).encode(), timeout=120)
    hostile.check_answer(r, path, json.dumps(body).encode())
    return r


@pytest.mark.parametrize("body, status", [
    ({**GEN, "options": {**FEW, "top_k": 2**70}}, 200),  # overflowed the engine's int64
    ({**GEN, "options": {**FEW, "seed": 2**70}}, 200),
    ({**GEN, "options": {**FEW, "temperature": 1e308}}, 200),  # vLLM refuses more than 2: clamped
    ({**GEN, "options": {**FEW, "temperature": 1e-300, "top_p": 1e-300, "min_p": 1e308}}, 200),
    ({**GEN, "options": {**FEW, "repeat_penalty": 1e308, "presence_penalty": -1e308, "frequency_penalty": 1e308}},
     200),
    ({**GEN, "options": {**FEW, "num_ctx": 1}}, 200),
    ({**GEN, "options": {**FEW, "num_ctx": 2**70}}, 200),
    ({**GEN, "options": {"num_predict": -5, "num_ctx": 16}}, 200),
    ({**GEN, "options": {**FEW, "stop": ["", "a" * 10000]}}, 200),
    ({**GEN, "context": [10**6], "options": FEW}, 400),  # outside the vocabulary
    ({**GEN, "context": [2**70], "options": FEW}, 400),
    ({**GEN, "prompt": "x" * 30000, "options": FEW}, 200),  # longer than the context: truncated
    ({**GEN, "prompt": "x" * 30000, "truncate": False, "options": FEW}, 400),
    ({**GEN, "prompt": "\0\x01\x7f\ufffe\U0010ffff\u202e", "options": FEW}, 200),
    ({**GEN, "format": {"type": "nonsense"}, "options": FEW}, 400),  # schemas vLLM cannot compile
    ({**GEN, "format": {"$ref": "#/definitions/missing"}, "options": FEW}, 400),
    ({**GEN, "format": {"type": "string", "pattern": "(((("}, "options": FEW}, 400),
    ({**GEN, "format": {"type": "integer", "minimum": 10**400}, "options": FEW}, 400),
    ({**GEN, "logprobs": True, "top_logprobs": 20, "options": FEW}, 200),
    ({"model": TINY, "messages": [{"role": "assistant", "content": "x"}, {"role": "system", "content": "y"}],
      "stream": False, "options": FEW}, 200),
    ({"model": TINY, "messages": [{"role": "\ud800", "content": "x\ud800"}], "stream": False, "options": FEW}, 200),
], ids=lambda v: json.dumps(v)[:60] if isinstance(v, dict) else str(v))
def test_known_hostile_requests(server, body, status):
    path = "/api/chat" if "messages" in body else "/api/generate"
    assert ask(server, body, path).status_code == status
    assert ask(server, {**body, "stream": True}, path).status_code == status  # the first chunk decides
    hostile.check_alive(server)


def test_openai_routes_refuse_what_the_engine_cannot_run(server):
    body = {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}}
    r = ask(server, body, "/v1/chat/completions")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    body = {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 2,
            "top_p": 1e-9, "seed": 2**70}
    assert ask(server, body, "/v1/chat/completions").status_code == 200


@ENGINE_SETTINGS
@given(options=hostile.options(), stream=st.booleans(), chat=st.booleans())
def test_hostile_options(server, options, stream, chat):
    options = {**options, "num_predict": 4}  # bounded work per example; num_predict itself is pinned above
    if chat:
        body, path = {"model": TINY, "messages": [{"role": "user", "content": "hi"}]}, "/api/chat"
    else:
        body, path = {"model": TINY, "prompt": "hi"}, "/api/generate"
    ask(server, {**body, "stream": stream, "options": options}, path)
    hostile.check_alive(server, ps=False)


@ENGINE_SETTINGS
@given(prompt=st.text(max_size=300) | st.sampled_from(hostile.NASTY_TEXT), raw=st.booleans())
def test_hostile_prompts(server, prompt, raw):
    r = ask(server, {**GEN, "prompt": prompt, "raw": raw, "options": FEW})
    assert r.status_code == 200, r.text  # an empty prompt is a load request: also a 200


def test_nothing_left_in_the_engine(server):
    assert settle(server, 30) == 0
