"""HTTP shape of /api/embed, /api/embeddings and /v1/embeddings over a real socket, with a scripted
embedding runner; compared with what a real Ollama answered (reference/ollama-golden 20, 20b, 20c, 25)."""

from __future__ import annotations

import base64
import math
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app
from vllama.engine.base import EngineError
from vllama.engine.embedder import InputTooLong, l2_normalize
from vllama.models.names import ModelName

GOLDEN_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ollama-golden"
JSON = "application/json; charset=utf-8"
EMB = "minilm"
DIM = 8


class FakeEmbedder:
    """Deterministic raw vectors (norm > 1); one token per word plus two special tokens."""

    def __init__(self, context_length: int = 16):
        self.context_length = context_length
        self.calls: list[dict[str, Any]] = []
        self.alive = True
        self.fail = False
        self.cache_bytes = 0
        self.on_gpu = False

    def unfinished(self) -> int:
        return 0

    def shutdown(self) -> None:
        pass

    @staticmethod
    def raw(text: str) -> list[float]:
        seed = sum(ord(c) for c in text) + 1
        return [float((seed * (i + 3)) % 17 - 8) + 0.5 for i in range(DIM)]

    async def embed(self, texts, truncate=True, dimensions=None, *, normalize=True, limit=None):
        self.calls.append({"texts": list(texts), "truncate": truncate, "dimensions": dimensions,
                           "normalize": normalize, "limit": limit})
        if self.fail:
            raise EngineError("model runner failed: boom")
        limit = min(limit or self.context_length, self.context_length)
        counts = [len(t.split()) + 2 for t in texts]
        if any(n > limit for n in counts) and not truncate:
            raise InputTooLong()
        out = []
        for text in texts:
            vector = self.raw(text)
            if dimensions and dimensions < len(vector):
                vector = vector[:dimensions]
            out.append(l2_normalize(vector) if normalize else vector)
        return out, sum(min(n, limit) for n in counts)


@pytest.fixture
def embedder():
    return FakeEmbedder()


@pytest.fixture(scope="module")
def shared():
    store = FakeStore(["fake:latest", EMB])
    store.models[ModelName.parse(EMB).key].capabilities = ["embedding"]

    def start(model):
        embedder, generator = app.current
        return embedder if "embedding" in model.capabilities else generator

    with shared_app(store, start) as app:
        yield app


@pytest.fixture
def url(shared, embedder):
    shared.reset((embedder, FakeRunner()))
    return shared.url


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def shape(value: Any) -> Any:
    """Keys (in order) and JSON value types, recursively; a list by the shape of its first item."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return ["list", shape(value[0])] if value else ["list"]
    return "number" if type(value) in (int, float) else type(value).__name__


def recorded(name: str) -> tuple[int, str, Any]:
    text = next(GOLDEN_DIR.glob(name + "-*.txt")).read_text().split("\n----\n")[1]
    head, body = text.split("\n\n", 1)
    ctype = next(line.split(": ", 1)[1] for line in head.splitlines() if line.lower().startswith("content-type"))
    return int(head.split()[1]), ctype, httpx.Response(200, content=body.strip()).json()


# -- /api/embed -----------------------------------------------------------------------------------

def test_embed_one_string(url, embedder):
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": "Why is the sky blue?"})
    assert r.status_code == 200 and r.headers["content-type"] == JSON
    body = r.json()
    assert list(body) == ["model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"]
    assert body["model"] == EMB and len(body["embeddings"]) == 1 and len(body["embeddings"][0]) == DIM
    assert abs(norm(body["embeddings"][0]) - 1) < 1e-6
    assert all(type(body[k]) is int and body[k] > 0 for k in ("total_duration", "load_duration"))
    assert body["prompt_eval_count"] == 5 + 2
    assert embedder.calls[-1] == {"texts": ["Why is the sky blue?"], "truncate": True, "dimensions": None,
                                  "normalize": True, "limit": None}


def f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_embed_values_are_float32_and_written_briefly(url):
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": "Why is the sky blue?"})
    expected = l2_normalize(FakeEmbedder.raw("Why is the sky blue?"))
    got = r.json()["embeddings"][0]
    assert [f32(v) for v in got] == [f32(v) for v in expected]
    assert all(len(repr(abs(v))) <= 11 for v in got)  # float32's digits, not float64's 17


def test_embed_batch_keeps_order(url):
    texts = ["first text", "second, longer text here", "third"]
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": texts})
    vectors = r.json()["embeddings"]
    assert len(vectors) == 3
    for text, vector in zip(texts, vectors):
        assert [round(v, 6) for v in vector] == [round(v, 6) for v in l2_normalize(FakeEmbedder.raw(text))]
    assert r.json()["prompt_eval_count"] == 4 + 6 + 3


@pytest.mark.parametrize("body", [{"input": ""}, {"input": []}, {}, {"input": None}])
def test_embed_empty_input_loads_the_model(url, embedder, body):
    r = httpx.post(url + "/api/embed", json={"model": EMB, **body})
    assert (r.status_code, r.text) == (200, '{"model":"minilm","embeddings":[]}')
    assert [m["name"] for m in httpx.get(url + "/api/ps").json()["models"]] == ["minilm:latest"]
    assert embedder.calls == []


@pytest.mark.parametrize("value", [5, True, {"a": 1}, [1, 2], ["ok", 3], [["nested"]], [None]])
def test_embed_invalid_input_type(url, value):
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": value})
    assert (r.status_code, r.json()) == (400, {"error": "invalid input type"})


def test_embed_dimensions_cut_then_renormalise(url, embedder):
    full = httpx.post(url + "/api/embed", json={"model": EMB, "input": "abc"}).json()["embeddings"][0]
    cut = httpx.post(url + "/api/embed", json={"model": EMB, "input": "abc", "dimensions": 3}).json()["embeddings"][0]
    assert len(cut) == 3 and abs(norm(cut) - 1) < 1e-6
    assert [round(v, 5) for v in cut] == [round(v, 5) for v in l2_normalize(full[:3])]
    assert embedder.calls[-1]["dimensions"] == 3
    for dims in (0, -1, 100):  # not a cut: the whole vector, as Ollama
        r = httpx.post(url + "/api/embed", json={"model": EMB, "input": "abc", "dimensions": dims})
        assert len(r.json()["embeddings"][0]) == DIM


def test_embed_truncate(url, embedder):
    long = " ".join(["word"] * 40)
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": [long, "short"]})
    assert r.status_code == 200 and r.json()["prompt_eval_count"] == 16 + 3
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": [long, "short"], "truncate": False})
    assert (r.status_code, r.json()) == (400, {"error": "the input length exceeds the context length"})
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": "a b c", "options": {"num_ctx": 4}})
    assert r.status_code == 200 and embedder.calls[-1]["limit"] == 4 and r.json()["prompt_eval_count"] == 4


def test_embed_errors(url):
    cases = [
        ({"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
        ({"input": "x"}, 404, "model '' not found"),
        ({"model": EMB, "input": "x", "truncate": "yes"}, 400,
         "json: cannot unmarshal string into Go struct field EmbedRequest.truncate of type bool"),
        ({"model": EMB, "input": "x", "keep_alive": "300"}, 400, None),
        ({"model": EMB, "input": "x", "options": {"num_ctx": "big"}}, 400, 'option "num_ctx" must be of type integer'),
    ]
    for body, status, message in cases:
        r = httpx.post(url + "/api/embed", json=body)
        assert r.status_code == status, body
        if message:
            assert r.json() == {"error": message}, body
    r = httpx.post(url + "/api/embed", content=b"")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})
    r = httpx.post(url + "/api/embed", content=b"{bad")
    assert r.status_code == 400 and r.json()["error"].startswith("invalid character")
    assert httpx.get(url + "/api/embed").status_code == 405


def test_embed_keep_alive_zero_unloads_and_engine_failure_is_500(url, embedder):
    r = httpx.post(url + "/api/embed", json={"model": EMB, "input": "x", "keep_alive": 0})
    assert r.status_code == 200
    for _ in range(100):
        if not httpx.get(url + "/api/ps").json()["models"]:
            break
        time.sleep(0.02)
    assert httpx.get(url + "/api/ps").json() == {"models": []}
    embedder.fail = True
    for path, body in (("/api/embed", {"input": "x"}), ("/api/embeddings", {"prompt": "x"})):
        r = httpx.post(url + path, json={"model": EMB, **body})
        assert (r.status_code, r.json()) == (500, {"error": "model runner failed: boom"})
    r = httpx.post(url + "/v1/embeddings", json={"model": EMB, "input": "x"})
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"


def test_embedding_model_cannot_generate_or_chat(url):
    r = httpx.post(url + "/api/generate", json={"model": EMB, "prompt": "hi"})
    assert (r.status_code, r.json()) == (400, {"error": '"minilm" does not support generate'})
    r = httpx.post(url + "/api/chat", json={"model": EMB, "messages": [{"role": "user", "content": "hi"}]})
    assert (r.status_code, r.json()) == (400, {"error": '"minilm" does not support chat'})


# -- /api/embeddings (legacy) ---------------------------------------------------------------------

def test_legacy_embeddings_are_raw(url, embedder):
    r = httpx.post(url + "/api/embeddings", json={"model": EMB, "prompt": "Why is the sky blue?"})
    assert r.status_code == 200 and r.headers["content-type"] == JSON
    assert list(r.json()) == ["embedding"]
    assert r.json()["embedding"] == FakeEmbedder.raw("Why is the sky blue?")  # not normalised
    assert norm(r.json()["embedding"]) > 1.5
    assert embedder.calls[-1]["normalize"] is False and embedder.calls[-1]["truncate"] is False


def test_legacy_embeddings_errors_and_empty_prompt(url, embedder):
    r = httpx.post(url + "/api/embeddings", json={"model": EMB, "prompt": ""})
    assert (r.status_code, r.text) == (200, '{"embedding":[]}')
    assert embedder.calls == []
    cases = [
        ({"prompt": "x"}, 400, "model is required"),
        ({"model": "nope", "prompt": "x"}, 404, 'model "nope" not found, try pulling it first'),
        ({"model": EMB, "prompt": " ".join(["w"] * 40)}, 500, "the input length exceeds the context length"),
    ]
    for body, status, message in cases:
        r = httpx.post(url + "/api/embeddings", json=body)
        assert (r.status_code, r.json()) == (status, {"error": message}), body


# -- /v1/embeddings -------------------------------------------------------------------------------

def test_v1_embeddings_float(url):
    r = httpx.post(url + "/v1/embeddings", json={"model": EMB, "input": ["one", "two"]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["object", "data", "model", "usage"] and body["object"] == "list"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" and abs(norm(d["embedding"]) - 1) < 1e-6 for d in body["data"])
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6} and body["model"] == EMB


def test_v1_embeddings_base64_is_little_endian_float32(url):
    plain = httpx.post(url + "/v1/embeddings", json={"model": EMB, "input": "hello"}).json()
    packed = httpx.post(url + "/v1/embeddings", json={"model": EMB, "input": "hello",
                                                     "encoding_format": "BASE64"}).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack(f"<{DIM}f", raw)) == [f32(v) for v in plain["data"][0]["embedding"]]


def test_v1_embeddings_dimensions_and_empty_string(url, embedder):
    body = httpx.post(url + "/v1/embeddings", json={"model": EMB, "input": "abc", "dimensions": 4}).json()
    assert len(body["data"][0]["embedding"]) == 4
    body = httpx.post(url + "/v1/embeddings", json={"model": EMB, "input": ""}).json()
    assert len(body["data"]) == 1 and embedder.calls[-1]["texts"] == [""]


def test_v1_embeddings_errors(url):
    def error(status: int, message: str) -> dict:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    cases = [
        ({"model": EMB, "input": []}, 400, "invalid input"),
        ({"model": EMB}, 400, "invalid input"),
        ({"model": EMB, "input": "x", "encoding_format": "int8"}, 400,
         "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64']."),
        ({"model": EMB, "input": [[1, 2, 3]]}, 400, "invalid input type"),
        ({"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
    ]
    for body, status, message in cases:
        r = httpx.post(url + "/v1/embeddings", json=body)
        assert (r.status_code, r.json()) == (status, error(status, message)), body
        handler = status == 404 or message == "invalid input type"  # the rest is the middleware's (gin's c.JSON)
        assert r.headers["content-type"] == ("application/json" if handler else "application/json; charset=utf-8")


# -- against Ollama's recorded answers ------------------------------------------------------------

@pytest.mark.skipif(not GOLDEN_DIR.is_dir(), reason="the reference recordings are not next to this checkout")
@pytest.mark.parametrize("name, path, body", [
    ("20", "/api/embed", {"model": EMB, "input": "Why is the sky blue?"}),
    ("20b", "/api/embed", {"model": EMB, "input": ["Why is the sky blue?", "Hello"]}),
    ("20c", "/api/embeddings", {"model": EMB, "prompt": "Why is the sky blue?"}),
    ("25", "/v1/embeddings", {"model": EMB, "input": "Why is the sky blue?"}),
])
def test_shapes_match_recorded_ollama(url, name, path, body):
    status, ctype, want = recorded(name)
    r = httpx.post(url + path, json=body)
    assert (r.status_code, r.headers["content-type"]) == (status, ctype)
    assert shape(r.json()) == shape(want)
    if "embeddings" in want:
        assert len(r.json()["embeddings"]) == len(want["embeddings"])
