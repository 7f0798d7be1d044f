"""/api/generate and /api/chat on the real vLLM engine, through the PyPI `ollama` client and raw httpx."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from tests.conftest import SMOL, TINY

pytestmark = pytest.mark.engine
GREEDY = {"temperature": 0, "seed": 1, "repeat_penalty": 1.0}
METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
           "eval_duration")


@pytest.fixture(scope="module")
def client(server):
    import ollama

    return ollama.Client(host=server, timeout=300)


def assert_final(chunk) -> None:
    assert chunk.done is True and chunk.done_reason in ("stop", "length")
    for key in METRICS:
        value = getattr(chunk, key)
        assert isinstance(value, int) and value > 0, key
    assert chunk.created_at


def test_generate_answers_from_the_real_model(client):
    r = client.generate(model=SMOL, prompt="What is the capital of France?", options={**GREEDY, "num_predict": 24})
    assert "Paris" in r.response
    assert_final(r)
    assert r.context and r.context[-r.eval_count:]  # prompt + answer tokens
    assert len(r.context) == r.prompt_eval_count + r.eval_count


def test_generate_stream_matches_non_stream(client):
    opts = {**GREEDY, "num_predict": 16}
    whole = client.generate(model=SMOL, prompt="Name a colour.", options=opts)
    chunks = list(client.generate(model=SMOL, prompt="Name a colour.", options=opts, stream=True))
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert "".join(c.response for c in chunks) == whole.response
    assert chunks[-1].response == ""
    assert_final(chunks[-1])
    assert chunks[-1].context == whole.context


def test_chat_system_and_history(client):
    messages = [
        {"role": "system", "content": "You are a geography teacher. Answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    r = client.chat(model=SMOL, messages=messages, options={**GREEDY, "num_predict": 24})
    assert r.message.role == "assistant" and "Paris" in r.message.content
    assert_final(r)
    messages += [{"role": "assistant", "content": r.message.content},
                 {"role": "user", "content": "And of Italy?"}]
    r2 = client.chat(model=SMOL, messages=messages, options={**GREEDY, "num_predict": 24})
    assert "Rome" in r2.message.content
    assert r2.prompt_eval_count > r.prompt_eval_count  # the history was rendered into the prompt


def test_chat_async_stream(server):
    import ollama

    async def run():
        client = ollama.AsyncClient(host=server, timeout=300)
        parts = []
        async for chunk in await client.chat(model=SMOL, messages=[{"role": "user", "content": "Say hello."}],
                                             options={**GREEDY, "num_predict": 8}, stream=True):
            parts.append(chunk)
        return parts

    parts = asyncio.run(run())
    assert all(p.message.role == "assistant" for p in parts)
    assert parts[-1].message.content == "" and "".join(p.message.content for p in parts).strip()
    assert_final(parts[-1])


def test_num_predict_and_stop(client):
    r = client.generate(model=TINY, prompt="hello", options={**GREEDY, "num_predict": 5})
    assert (r.eval_count, r.done_reason) == (5, "length")
    prompt, opts = "Count from 1 to 20.", {**GREEDY, "num_predict": 40}
    free = client.generate(model=SMOL, prompt=prompt, options=opts).response
    word = free.split()[3]  # stop where the unconstrained answer has its fourth word
    r = client.generate(model=SMOL, prompt=prompt, options={**opts, "stop": [word]})
    assert r.done_reason == "stop" and word not in r.response
    assert free.startswith(r.response) and len(r.response) < len(free)


def test_seed_makes_sampling_repeatable(client):
    opts = {"temperature": 0.9, "seed": 1234, "num_predict": 16}
    a = client.generate(model=SMOL, prompt="Write a word.", options=opts).response
    b = client.generate(model=SMOL, prompt="Write a word.", options=opts).response
    assert a == b
    g1 = client.generate(model=SMOL, prompt="Write a word.", options={"temperature": 0, "num_predict": 16}).response
    g2 = client.generate(model=SMOL, prompt="Write a word.", options={"temperature": 0, "num_predict": 16}).response
    assert g1 == g2


def test_format_json_and_schema(client):
    r = client.generate(model=SMOL, prompt='Reply in JSON with one key, "colour", for the sky.', format="json",
                        options={**GREEDY, "num_predict": 200})
    assert r.done_reason == "stop"
    assert isinstance(json.loads(r.response), dict)
    schema = {"type": "object", "required": ["capital", "big"], "properties": {
        "capital": {"type": "string", "enum": ["Paris", "Rome", "Berlin"]}, "big": {"type": "boolean"}}}
    r = client.chat(model=SMOL, messages=[{"role": "user", "content": "What is the capital of France? JSON."}],
                    format=schema, options={**GREEDY, "num_predict": 200})
    obj = json.loads(r.message.content)
    assert set(obj) == {"capital", "big"} and obj["capital"] in ("Paris", "Rome", "Berlin")
    assert isinstance(obj["big"], bool)


def test_errors_on_the_real_server(server, client):
    import ollama

    with pytest.raises(ollama.ResponseError) as err:
        client.generate(model="no-such-model", prompt="hi")
    assert err.value.status_code == 404 and err.value.error == "model 'no-such-model' not found"
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=TINY, messages=[{"role": "user", "content": "hi"}], options={"temperature": "hot"})
    assert err.value.status_code == 400
    long_prompt = "word " * 5000
    r = httpx.post(server + "/api/generate", json={"model": TINY, "prompt": long_prompt, "truncate": False,
                                                   "stream": False}, timeout=60)
    assert (r.status_code, r.json()) == (400, {"error": "the input length exceeds the context length"})
    r = httpx.post(server + "/api/generate", json={"model": TINY, "prompt": long_prompt, "stream": False,
                                                   "options": {"num_predict": 3}}, timeout=120)
    assert r.status_code == 200 and r.json()["eval_count"] == 3  # truncated by default, as Ollama does


def test_concurrent_streams_are_batched(server):
    """Eight streams whose token timelines overlap: the engine ran them together, not one by one."""
    spans: dict[int, tuple[float, float]] = {}

    def one(i: int) -> None:
        body = {"model": TINY, "prompt": f"request {i}", "options": {**GREEDY, "num_predict": 48}}
        times = []
        with httpx.stream("POST", server + "/api/generate", json=body, timeout=300) as r:
            for line in r.iter_lines():
                if not json.loads(line)["done"]:
                    times.append(time.monotonic())
        spans[i] = (times[0], times[-1])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spans) == 8
    latest_first = max(first for first, _ in spans.values())
    earliest_last = min(last for _, last in spans.values())
    assert latest_first < earliest_last  # every stream had started before any finished


def _running(server: str) -> float:
    text = httpx.get(server + "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("vllama_engine_requests_unfinished"))


@pytest.mark.parametrize("stream", [True, False])
def test_disconnect_aborts_the_engine_request(server, stream):
    body = {"model": TINY, "prompt": "go on", "stream": stream, "options": {"num_predict": 1500, "temperature": 1}}
    if stream:
        with httpx.stream("POST", server + "/api/generate", json=body, timeout=60) as r:
            lines = r.iter_lines()
            next(lines), next(lines)
            assert _running(server) == 1
    else:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server + "/api/generate", json=body, timeout=1.5)
    deadline = time.monotonic() + 10
    while _running(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running(server) == 0
