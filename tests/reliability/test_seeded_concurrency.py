"""No request mix may kill the engine, on the session's real server (tiny model).

The regression: on the CPU, a seeded request sampled with temperature > 0 in the same engine step as
another request's partial (chunked) prefill killed the engine core ("CPU Generator does not use
offset"), failing every request in flight. vllama.engine.seeded_prefill fixes it; these tests pin
the mix that found it and fuzz the rest of the option space in concurrent mixes (bench/fuzz_engine.py).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bench.fuzz_engine import WORDS, markdown, run
from tests.conftest import TINY

pytestmark = pytest.mark.engine


def _long_prompt(i: int) -> str:
    """About 1,400 words: two of these in one step overrun the 2,048-token budget, so one is chunked."""
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(1400))


def _bodies() -> list[tuple[str, dict]]:
    """100 seeded, sampled requests; every fifth has a long prompt that forces chunked prefill."""
    out = []
    for i in range(100):
        options = {"num_predict": 8, "temperature": 0.7, "seed": i}
        if i % 5 == 0:
            out.append(("/api/generate", {"model": TINY, "prompt": _long_prompt(i), "stream": False,
                                          "options": options}))
        else:
            out.append(("/api/chat", {"model": TINY, "stream": False, "options": options,
                                      "messages": [{"role": "user", "content": f"Tell me about llama {i}."}]}))
    return out


async def _send_all(url: str, bodies: list[tuple[str, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies) + 4, max_keepalive_connections=len(bodies) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0), limits=limits) as http:
        return await asyncio.gather(*(http.post(path, json=body) for path, body in bodies))


def _text(response: httpx.Response) -> str:
    body = response.json()
    return body["message"]["content"] if "message" in body else body["response"]


def test_hundred_seeded_sampled_requests_beside_long_prompts(server):
    bodies = _bodies()
    first = asyncio.run(_send_all(server, bodies))
    assert [r.status_code for r in first] == [200] * 100, [r.text for r in first if r.status_code != 200][:3]
    # The same seeds again, in a different order (so a different batching and chunking): the same texts.
    second = list(reversed(asyncio.run(_send_all(server, list(reversed(bodies))))))
    assert [r.status_code for r in second] == [200] * 100
    assert [_text(r) for r in second] == [_text(r) for r in first]
    long_counts = {r.json()["prompt_eval_count"] for i, r in enumerate(first) if i % 5 == 0}
    assert min(long_counts) > 1024  # long enough that two of them overrun one step's 2,048 tokens


def test_fuzzed_concurrent_mixes_complete_or_fail_as_the_client(server, record_property):
    figures = run(server, model=TINY, rounds=2, concurrency=32, seed=16)
    record_property("fuzz_engine", json.dumps(figures))
    print("\n" + markdown(figures))
    for r in figures["results"]:
        assert r["failed"] == 0, r["failures"]
        assert r["completed"] + r["client_errors"] == r["sent"]
        assert r["leaked"] == 0, f"the engine still holds {r['leaked']} requests"


def test_pinned_streamed_json_with_top_logprobs(server):
    """Found by the fuzzer: a candidate the JSON grammar masks has a logprob of -inf, which broke the
    stream's JSON encoding mid-answer (the connection dropped). It is -9999.0 now, as in vLLM's server."""
    body = {"model": TINY, "stream": True, "prompt": "Hi!", "format": "json", "logprobs": True, "top_logprobs": 3,
            "options": {"temperature": 0.7, "top_k": 1000, "num_predict": 24}}
    with httpx.stream("POST", server + "/api/generate", json=body, timeout=300) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert response.status_code == 200
    assert lines[-1]["done"] is True and not [line for line in lines if "error" in line]
    tops = [t["logprob"] for line in lines for lp in line.get("logprobs", []) for t in lp["top_logprobs"]]
    assert tops and all(t >= -9999.0 for t in tops)
