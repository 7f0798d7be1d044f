"""/metrics and /api/ps on the real engine (the session `server`): vLLM's figures for the model move
with a request, and the sizes are the KV cache the engine allocated plus the weights."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ENGINE_ENV, TINY
from tests.live_server import HTTP
from vllama.engine.memory import CPU_ENGINE_OVERHEAD

pytestmark = pytest.mark.engine


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = HTTP.get(url + "/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_engine_series_move_and_ps_sizes_match_the_engine(server):
    body = {"model": TINY, "prompt": "count", "stream": False, "options": {"num_predict": 8, "temperature": 0}}
    assert HTTP.post(server + "/api/generate", json=body, timeout=300).status_code == 200
    [entry] = [m for m in HTTP.get(server + "/api/ps").json()["models"] if m["model"].startswith(TINY)]
    model = (("model", entry["model"]),)
    before = scrape(server)
    assert HTTP.post(server + "/api/generate", json=body, timeout=300).status_code == 200
    after = scrape(server)
    for series in ("vllama_engine_time_to_first_token_seconds_count", "vllama_engine_prompt_tokens_total",
                   "vllama_engine_generation_tokens_total", "vllama_engine_prefix_cache_queries_total"):
        assert after[(series, model)] > before[(series, model)], series
    assert after[("vllama_engine_running_requests", model)] == 0
    assert 0 <= after[("vllama_engine_kv_cache_usage_ratio", model)] <= 1
    assert after[("vllama_engine_requests_unfinished", model)] == 0
    # /api/ps and /metrics agree, and the KV cache is what vLLM allocated of what it was given:
    # whole blocks of the 256 MiB the session's server sets (never more, at most a few blocks less)
    kv = after[("vllama_model_kv_cache_bytes", model)]
    assert entry["size"] == after[("vllama_model_memory_bytes", model)] and entry["size_vram"] == 0
    given = int(ENGINE_ENV["VLLAMA_KV_CACHE_MEMORY_BYTES"])
    assert 0.95 * given <= kv <= given
    weights = entry["size"] - kv
    assert after[("vllama_model_memory_reserved_bytes", model)] == weights + given + CPU_ENGINE_OVERHEAD
