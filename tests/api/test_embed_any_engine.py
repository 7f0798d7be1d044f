"""Embeddings from a generation model on the real engine (Ollama embeds with any model): smollm2:135m
on vLLM's pooling runner converted for embedding, a second engine next to its generation one."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.conftest import SMOL

pytestmark = pytest.mark.engine
HIDDEN = 576  # smollm2-135m's hidden size, the length of Ollama's vectors for it (recording 20)


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def test_a_generation_model_embeds_on_every_route(server):
    r = httpx.post(server + "/api/embed", json={"model": SMOL, "input": ["Why is the sky blue?", "Hello"]},
                   timeout=600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [len(v) for v in body["embeddings"]] == [HIDDEN, HIDDEN]
    assert all(abs(norm(v) - 1) < 1e-4 for v in body["embeddings"])
    assert body["prompt_eval_count"] == 7  # 6 + 1 tokens, as Ollama counted them (recording 20b)
    assert body["embeddings"][0] != body["embeddings"][1]
    # the legacy route is not normalised (Ollama's vector for this prompt has norm 46.6)
    legacy = httpx.post(server + "/api/embeddings", json={"model": SMOL, "prompt": "Why is the sky blue?"},
                        timeout=600).json()["embedding"]
    assert len(legacy) == HIDDEN and norm(legacy) > 1.5
    unit = [v / norm(legacy) for v in legacy]
    assert max(abs(a - b) for a, b in zip(unit, body["embeddings"][0])) < 1e-3
    v1 = httpx.post(server + "/v1/embeddings", json={"model": SMOL, "input": "Why is the sky blue?"},
                    timeout=600).json()
    assert len(v1["data"][0]["embedding"]) == HIDDEN and v1["usage"]["prompt_tokens"] == 6
    # the generation engine still answers next to the embedding one
    gen = httpx.post(server + "/api/generate", json={"model": SMOL, "prompt": "Hi", "stream": False,
                                                     "options": {"num_predict": 2}}, timeout=600)
    assert gen.status_code == 200 and gen.json()["done"]
