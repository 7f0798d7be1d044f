"""Embeddings on the real vLLM engine: all-MiniLM-L6-v2 (`all-minilm`) served by `vllama serve`, through
the PyPI `ollama` and `openai` clients and raw httpx."""

from __future__ import annotations

import base64
import math
import struct
import time

import httpx
import pytest

from tests.conftest import MINILM

pytestmark = pytest.mark.engine
DIM = 384
CONTEXT = 256  # sentence_bert_config.json's max_seq_length; vLLM caps the model there
SIMILAR = ["A man is playing a guitar.", "Someone is strumming a guitar."]
UNRELATED = "The stock market fell sharply on Monday."


@pytest.fixture(scope="module")
def client(server):
    import ollama

    return ollama.Client(host=server, timeout=300)


@pytest.fixture(scope="module")
def oai(server):
    import openai

    return openai.OpenAI(base_url=server + "/v1", api_key="unused", timeout=300, max_retries=0)


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def unit(v: list[float]) -> list[float]:
    n = norm(v)
    return [x / n for x in v]


def close(a: list[float], b: list[float], tol: float = 1e-4) -> bool:
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < tol


def test_model_is_an_embedding_model(client, server):
    show = client.show(MINILM)
    assert show.capabilities == ["embedding"] and show.details.family == "bert"
    r = httpx.post(server + "/api/generate", json={"model": MINILM, "prompt": "hi"}, timeout=60)
    assert (r.status_code, r.json()) == (400, {"error": '"all-minilm" does not support generate'})
    r = httpx.post(server + "/api/chat", json={"model": MINILM, "messages": [{"role": "user", "content": "hi"}]},
                   timeout=60)
    assert (r.status_code, r.json()) == (400, {"error": '"all-minilm" does not support chat'})


def test_empty_input_loads_the_model(server):
    started = time.perf_counter()
    r = httpx.post(server + "/api/embed", json={"model": MINILM}, timeout=300)
    print(f"\nembedding engine ready after {time.perf_counter() - started:.1f} s")
    assert (r.status_code, r.json()) == (200, {"model": MINILM, "embeddings": []})
    loaded = {m["name"]: m for m in httpx.get(server + "/api/ps").json()["models"]}
    assert loaded["all-minilm:latest"]["context_length"] == CONTEXT


def test_embed_unit_vectors_and_meaning(client):
    r = client.embed(model=MINILM, input=[*SIMILAR, UNRELATED])
    assert len(r.embeddings) == 3 and all(len(v) == DIM for v in r.embeddings)
    assert all(abs(norm(v) - 1) < 1e-5 for v in r.embeddings)
    a, b, c = r.embeddings
    assert cos(a, b) > 0.5 > cos(a, c) and cos(a, b) > cos(b, c) + 0.3
    assert r.total_duration > 0 and r.load_duration > 0
    words = sum(len(t.split()) for t in [*SIMILAR, UNRELATED])
    assert words + 3 * 3 <= r.prompt_eval_count < 2 * words  # [CLS] ... . [SEP], some words in pieces


def test_embed_matches_sentence_transformers(client):
    st = pytest.importorskip("sentence_transformers")
    from vllama.models.embedded_minilm import installed_folder

    reference = st.SentenceTransformer(str(installed_folder()), device="cpu").encode([*SIMILAR, UNRELATED])
    ours = client.embed(model=MINILM, input=[*SIMILAR, UNRELATED]).embeddings
    for got, want in zip(ours, reference.tolist()):
        assert close(got, want, 1e-5)


def test_batch_order_is_kept(client):
    texts = [f"Sentence number {i} is about {topic}." for i, topic in
             enumerate(["cats", "the weather", "stock prices", "football", "cooking pasta", "quantum physics"] * 4)]
    batch = client.embed(model=MINILM, input=texts).embeddings
    for i in (0, 5, 11, 23):
        alone = client.embed(model=MINILM, input=texts[i]).embeddings[0]
        assert close(batch[i], alone)


def test_empty_string_in_a_batch(client):
    r = client.embed(model=MINILM, input=["", "x"])  # "" is [CLS] [SEP]: a vector like any other
    assert [len(v) for v in r.embeddings] == [DIM, DIM] and r.prompt_eval_count == 2 + 3


def test_legacy_embeddings_are_not_normalised(client):
    raw = client.embeddings(model=MINILM, prompt=SIMILAR[0]).embedding
    normalised = client.embed(model=MINILM, input=SIMILAR[0]).embeddings[0]
    assert len(raw) == DIM and norm(raw) > 2  # mean-pooled BERT states, about 5-7 long
    assert close(unit(raw), normalised)
    assert client.embeddings(model=MINILM, prompt="").embedding == []


def test_dimensions_cut_then_renormalise(client):
    full = client.embed(model=MINILM, input=UNRELATED).embeddings[0]
    cut = client.embed(model=MINILM, input=UNRELATED, dimensions=64).embeddings[0]
    assert len(cut) == 64 and abs(norm(cut) - 1) < 1e-5
    assert close(cut, unit(full[:64]))


def test_truncation(client):
    import ollama

    long = " ".join(["word"] * 600)
    r = client.embed(model=MINILM, input=[long, "short"])
    assert r.prompt_eval_count == CONTEXT + 3
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model=MINILM, input=[long, "short"], truncate=False)
    assert (err.value.status_code, err.value.error) == (400, "the input length exceeds the context length")
    short = client.embed(model=MINILM, input=long, options={"num_ctx": 32})
    assert short.prompt_eval_count == 32


def test_errors_through_the_ollama_client(client):
    import ollama

    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model="no-such-model", input="x")
    assert (err.value.status_code, err.value.error) == (404, 'model "no-such-model" not found, try pulling it first')
    with pytest.raises(ollama.ResponseError) as err:
        client.embeddings(model="no-such-model", prompt="x")
    assert err.value.status_code == 404 and "try pulling it first" in err.value.error


def test_openai_client_float_and_base64(oai, client):
    texts = [*SIMILAR, UNRELATED]
    floats = oai.embeddings.create(model=MINILM, input=texts, encoding_format="float")
    assert floats.object == "list" and floats.model == MINILM
    assert [d.index for d in floats.data] == [0, 1, 2] and all(len(d.embedding) == DIM for d in floats.data)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0
    native = client.embed(model=MINILM, input=texts).embeddings
    assert all(close(d.embedding, v, 1e-6) for d, v in zip(floats.data, native))
    decoded = oai.embeddings.create(model=MINILM, input=texts)  # the client asks for base64 and decodes it
    assert all(close(d.embedding, f.embedding, 1e-6) for d, f in zip(decoded.data, floats.data))
    cut = oai.embeddings.create(model=MINILM, input=UNRELATED, dimensions=32, encoding_format="float")
    assert len(cut.data[0].embedding) == 32 and abs(norm(cut.data[0].embedding) - 1) < 1e-5


def test_openai_base64_bytes(server):
    body = {"model": MINILM, "input": "hello", "encoding_format": "base64"}
    packed = httpx.post(server + "/v1/embeddings", json=body, timeout=60).json()["data"][0]["embedding"]
    plain = httpx.post(server + "/v1/embeddings", json={**body, "encoding_format": "float"}, timeout=60).json()
    values = struct.unpack(f"<{DIM}f", base64.b64decode(packed))
    assert [struct.unpack("<f", struct.pack("<f", v))[0] for v in plain["data"][0]["embedding"]] == list(values)


def test_openai_errors(oai):
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        oai.embeddings.create(model="no-such-model", input="x")
    assert err.value.body["message"] == 'model "no-such-model" not found, try pulling it first'
    with pytest.raises(openai.BadRequestError) as err:
        oai.embeddings.create(model=MINILM, input=[])
    assert err.value.body["message"] == "invalid input"
    with pytest.raises(openai.BadRequestError) as err:
        oai.embeddings.create(model=MINILM, input="x", encoding_format="int8")  # type: ignore[arg-type]
    assert "Supported values: ['float', 'base64']" in err.value.body["message"]


def test_throughput_of_a_batch(client):
    texts = [f"This is short sentence number {i} about topic {i % 5}." for i in range(32)]
    client.embed(model=MINILM, input=texts)  # warm
    started = time.perf_counter()
    r = client.embed(model=MINILM, input=texts)
    seconds = time.perf_counter() - started
    print(f"\n32 short sentences: {seconds * 1000:.0f} ms, {32 / seconds:.0f} embeddings/s")
    assert len(r.embeddings) == 32
