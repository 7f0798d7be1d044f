"""The /v1 OpenAI-compatible routes on the real vLLM engine, through the PyPI `openai` client and raw httpx."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.test_openai_http import CHAT, golden, newest_framing, shape, sse_frames
from tests.conftest import SMOL, TINY

pytestmark = pytest.mark.engine
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0, "seed": 1}


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server + "/v1", api_key="ollama", max_retries=0, timeout=300)


def test_chat_answers_from_the_real_model(client):
    r = client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=24, **GREEDY)
    choice = r.choices[0]
    assert "Paris" in choice.message.content and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert r.id.startswith("chatcmpl-") and r.model == SMOL and r.system_fingerprint == "fp_ollama"
    assert r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_matches_whole_answer(client):
    whole = client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=16, **GREEDY)
    chunks = list(client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=16, stream=True,
                                                 stream_options={"include_usage": True}, **GREEDY))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1


def test_max_tokens_gives_length(client):
    r = client.chat.completions.create(model=TINY, messages=QUESTION, max_tokens=3, **GREEDY)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


def test_completions(client):
    r = client.completions.create(model=SMOL, prompt="What is the capital of France?", max_tokens=24, **GREEDY)
    assert "Paris" in r.choices[0].text and r.id.startswith("cmpl-") and r.object == "text_completion"
    assert r.usage.completion_tokens <= 24
    streamed = list(client.completions.create(model=SMOL, prompt="What is the capital of France?", max_tokens=24,
                                              stream=True, **GREEDY))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == r.choices[0].text
    assert streamed[-1].choices[0].finish_reason == r.choices[0].finish_reason


def test_json_mode(client):
    r = client.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Give a JSON object with keys name and age."}],
        max_tokens=60, response_format={"type": "json_object"}, **GREEDY)
    content = r.choices[0].message.content
    assert content.lstrip().startswith("{")
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)


def test_json_schema(client):
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    r = client.chat.completions.create(
        model=SMOL, messages=QUESTION, max_tokens=40, **GREEDY,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content)["capital"], str)


def test_models(client):
    import openai

    ids = {m.id for m in client.models.list()}
    assert {SMOL, TINY + ":latest"} <= ids
    model = client.models.retrieve(SMOL)
    assert (model.id, model.owned_by, model.object) == (SMOL, "library", "model") and model.created > 0
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.status_code == 404


def test_unknown_model_is_not_found(client):
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
    assert err.value.status_code == 404
    assert err.value.body == {"message": "model 'no-such-model' not found", "type": "not_found_error",
                              "param": None, "code": None}


def test_shapes_match_ollama_on_the_real_engine(server):
    status, ctype, recorded = golden("21")
    r = httpx.post(server + "/v1/chat/completions", json=CHAT, timeout=300)
    assert (r.status_code, r.headers["content-type"]) == (status, ctype)
    assert shape(r.json()) == shape(json.loads(recorded))
    assert r.json()["choices"][0]["finish_reason"] == "length"

    status, ctype, recorded = golden("22b")
    r = httpx.post(server + "/v1/chat/completions", timeout=300,
                   json={**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert (r.status_code, r.headers["content-type"]) == (status, ctype)
    # the 0.24 recording as the newest Ollama frames it (see test_openai_http.newest_framing)
    ours, theirs = sse_frames(r.text), newest_framing(sse_frames(recorded))
    assert shape(ours[0]) == shape(theirs[0])  # content
    assert shape(ours[-3]) == shape(theirs[-3])  # finish
    assert shape(ours[-2]) == shape(theirs[-2])  # usage
    assert ours[-3]["choices"][0]["finish_reason"] == "length" and ours[-2]["usage"]["completion_tokens"] == 5


def test_logprobs(client):
    r = client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=4, logprobs=True, top_logprobs=2,
                                       **GREEDY)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 and isinstance(t.token, str) for t in content)
    # greedy: the sampled token is the most likely one
    assert all(t.top_logprobs[0].logprob == pytest.approx(t.logprob) for t in content)
    r = client.completions.create(model=SMOL, prompt="Hi", max_tokens=3, logprobs=1, **GREEDY)
    assert len(r.choices[0].logprobs.model_extra["content"]) == r.usage.completion_tokens


def test_tools_need_a_tools_model(client):
    import openai

    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(openai.BadRequestError, match="does not support tools"):
        client.chat.completions.create(model=SMOL, messages=QUESTION, tools=tools)
