"""bench.stats: percentiles, level summaries and repeats, on hand-checked numbers."""

import pytest

from bench.stats import clean_runs, combine, difference, inter_token_latency, level_summary, percentile, ratio, summarize


def test_percentile_interpolates_between_ranks_like_numpy():
    xs = [1.0, 2.0, 3.0, 4.0]
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 50) == 2.5
    assert percentile(xs, 100) == 4.0
    assert percentile(xs, 95) == pytest.approx(3.85)  # numpy.percentile([1,2,3,4], 95)
    assert percentile(reversed(xs), 50) == 2.5  # order does not matter
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(xs, 101)


def test_percentile_of_101_values_is_the_value_at_that_rank():
    xs = list(range(101))
    assert [percentile(xs, q) for q in (50, 95, 99)] == [50, 95, 99]


def test_summarize_skips_missing_values():
    s = summarize([0.2, None, 0.4, 0.6])
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(0.4)
    assert (s["min"], s["p50"], s["max"]) == (0.2, 0.4, 0.6)
    assert summarize([]) == {"n": 0, "mean": None, "min": None, "p50": None, "p95": None, "p99": None, "max": None}


def test_inter_token_latency_is_time_per_token_after_the_first():
    assert inter_token_latency(1.0, 2.0, 11) == pytest.approx(0.1)
    assert inter_token_latency(1.0, 1.0, 1) is None  # one token: no gap to measure
    assert inter_token_latency(None, None, 5) is None


def _req(ttft, latency, tokens, error=None):
    return {"ttft_s": ttft, "latency_s": latency, "itl_s": 0.01, "max_gap_s": 0.02, "eval_count": tokens,
            "error": error}


def test_level_summary_throughput_counts_every_token_latency_only_successes():
    reqs = [_req(0.1, 1.0, 64), _req(0.3, 2.0, 64), _req(None, 5.0, 10, error="HTTP 500")]
    s = level_summary(reqs, wall_s=4.0)
    assert s["requests"] == 3 and s["errors"] == 1
    assert s["tokens"] == 138
    assert s["tok_s"] == pytest.approx(138 / 4)
    assert s["req_s"] == pytest.approx(2 / 4)
    assert s["ttft_s"]["p50"] == pytest.approx(0.2)
    assert s["latency_s"]["max"] == 2.0  # the failed request's 5 s is not a latency figure


def test_combine_takes_medians_of_repeats_and_keeps_every_throughput():
    a = level_summary([_req(0.1, 1.0, 64)], 1.0)
    b = level_summary([_req(0.3, 3.0, 64)], 2.0)
    c = level_summary([_req(0.2, 2.0, 64)], 4.0)
    out = combine([a, b, c])
    assert out["runs"] == out["runs_used"] == 3
    assert out["tok_s"] == 32.0 and out["tok_s_all"] == [64.0, 32.0, 16.0]
    assert out["ttft_p50"] == pytest.approx(0.2)
    assert out["latency_p95"] == pytest.approx(2.0)
    assert not out["noisy"] and out["foreign_cpu"] is None
    assert combine([]) == {}


def test_combine_reports_the_clean_runs_only_else_the_least_noisy():
    fast, slow, slower = (level_summary([_req(0.1, 1.0, 64)], w) for w in (1.0, 4.0, 8.0))
    out = combine([slow, fast, slower], [0.4, 0.02, 0.3], threshold=0.1)
    assert (out["runs"], out["runs_used"], out["tok_s"], out["foreign_cpu"], out["noisy"]) == (3, 1, 64.0, 0.02, False)
    assert out["tok_s_all"] == [16.0, 64.0, 8.0]
    out = combine([slow, slower], [0.4, 0.3], threshold=0.1)
    assert (out["runs_used"], out["tok_s"], out["foreign_cpu"], out["noisy"]) == (1, 8.0, 0.3, True)
    assert clean_runs([0.05, None, 0.2], 0.1) == [0, 1]  # unknown counts as clean


def test_ratio_and_difference_tolerate_missing_figures():
    assert ratio(90.0, 100.0) == 0.9
    assert ratio(None, 100.0) is None and ratio(1.0, 0.0) is None
    assert difference(0.12, 0.1) == pytest.approx(0.02)
    assert difference(None, 0.1) is None


def test_prefill_rates_from_the_client_and_the_server():
    from bench.stats import prefill_summary

    ok = [{"ttft_s": 0.5, "server": {"prompt_eval_count": 1000, "prompt_eval_duration": 400_000_000}},
          {"ttft_s": 1.0, "server": {"prompt_eval_count": 2000, "prompt_eval_duration": 600_000_000}},
          {"ttft_s": 0.2, "server": {"prompt_eval_count": 100}}]  # the ceiling reports no duration
    out = prefill_summary(ok)
    assert out["prefill_tok_s"]["p50"] == 2000  # 1000/0.5, 2000/1.0, 100/0.2 = 2000, 2000, 500
    assert out["server_prefill_tok_s"] == pytest.approx(3000 / 1.0)
    assert out["prompt_tokens"]["max"] == 2000
    assert prefill_summary([{"ttft_s": None}])["server_prefill_tok_s"] is None


def test_ttft_by_turn_and_cpu_per_thousand_tokens():
    from bench.stats import per_thousand

    reqs = [{"ttft_s": t, "latency_s": 1.0, "eval_count": 10, "turn": turn, "error": None}
            for turn, t in ((1, 0.5), (2, 0.2), (1, 0.7), (2, 0.4))]
    summary = level_summary(reqs, 2.0)
    assert summary["ttft_by_turn"]["1"]["p50"] == pytest.approx(0.6)
    assert summary["ttft_by_turn"]["2"]["p50"] == pytest.approx(0.3)
    assert "ttft_by_turn" not in level_summary([{k: v for k, v in r.items() if k != "turn"} for r in reqs], 2.0)
    summary.update(cpu_s_per_1k=per_thousand(3.0, 40), peak_rss=1 << 20)
    combined = combine([summary])
    assert combined["ttft_by_turn"] == {"1": pytest.approx(0.6), "2": pytest.approx(0.3)}
    assert combined["cpu_s_per_1k"] == 75.0 and combined["peak_rss"] == 1 << 20
    assert per_thousand(None, 10) is None and per_thousand(1.0, 0) is None
