"""Pure statistics over per-request records: percentiles, one level's summary, ratios between targets."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    k = (len(xs) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(values: Iterable[float | None]) -> dict[str, float | int | None]:
    xs = [float(v) for v in values if v is not None]
    out: dict[str, float | int | None] = {"n": len(xs)}
    out["mean"] = sum(xs) / len(xs) if xs else None
    out["min"] = min(xs) if xs else None
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(xs, q)
    out["max"] = max(xs) if xs else None
    return out


def inter_token_latency(first: float | None, last: float | None, tokens: int) -> float | None:
    """Mean time per output token after the first one (chunks may carry several tokens)."""
    if first is None or last is None or tokens < 2:
        return None
    return (last - first) / (tokens - 1)


def level_summary(requests: Sequence[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """One concurrency level: aggregate throughput over the wall time, latency distributions.

    Every generated token counts towards throughput, errors included (they cost the server the same);
    latency figures come from the requests that succeeded.
    """
    ok = [r for r in requests if not r.get("error")]
    tokens = sum(int(r.get("eval_count") or 0) for r in requests)
    wall = max(wall_s, 1e-9)
    return {
        "requests": len(requests),
        "errors": len(requests) - len(ok),
        "tokens": tokens,
        "wall_s": wall_s,
        "tok_s": tokens / wall,
        "req_s": len(ok) / wall,
        "ttft_s": summarize(r.get("ttft_s") for r in ok),
        "itl_s": summarize(r.get("itl_s") for r in ok),
        "latency_s": summarize(r.get("latency_s") for r in ok),
        "max_gap_s": summarize(r.get("max_gap_s") for r in ok),
        "eval_count": summarize(r.get("eval_count") for r in ok),
        **prefill_summary(ok),
        **({"ttft_by_turn": ttft_by_turn(ok)} if any("turn" in r for r in ok) else {}),
    }


def _server(record: dict[str, Any], key: str) -> Any:
    return (record.get("server") or {}).get(key)


def prefill_summary(ok: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Prompt tokens and how fast they were read: per request, prompt tokens over time to first token
    (what a client sees, on every target); and where the server reports it, the sum of
    prompt_eval_count over the sum of prompt_eval_duration (its own prefill clock)."""
    counts = [_server(r, "prompt_eval_count") for r in ok]
    rates = [c / r["ttft_s"] for r, c in zip(ok, counts) if c and r.get("ttft_s")]
    timed = [(c, _server(r, "prompt_eval_duration")) for r, c in zip(ok, counts)]
    timed = [(c, d) for c, d in timed if c and d]
    server_rate = sum(c for c, _ in timed) / (sum(d for _, d in timed) / 1e9) if timed else None
    return {"prompt_tokens": summarize(counts), "prefill_tok_s": summarize(rates), "server_prefill_tok_s": server_rate}


def ttft_by_turn(ok: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """A conversation's turns: time to first token by turn number (keys are strings, as in the JSON)."""
    turns = sorted({r["turn"] for r in ok if "turn" in r})
    return {str(t): summarize(r.get("ttft_s") for r in ok if r.get("turn") == t) for t in turns}


def per_thousand(cpu_s: float | None, tokens: int) -> float | None:
    """CPU seconds per 1,000 generated tokens."""
    if cpu_s is None or not tokens:
        return None
    return 1000 * cpu_s / tokens


def clean_runs(foreign: Sequence[float | None], threshold: float) -> list[int]:
    """Which runs of a level to report: those where other processes stayed under `threshold` of the
    CPU; if there is none, the least noisy one alone. (Noise only ever slows a run down, and on a
    shared 2-core machine a little of it costs a CPU engine far more than its share.)"""
    known = [f if f is not None else 0.0 for f in foreign]
    clean = [i for i, f in enumerate(known) if f <= threshold]
    return clean or ([min(range(len(known)), key=known.__getitem__)] if known else [])


def combine(summaries: Sequence[dict[str, Any]], foreign: Sequence[float | None] | None = None,
            threshold: float = 1.0) -> dict[str, Any]:
    """Runs of one (target, level): the median of each headline figure over the clean runs
    (`clean_runs`), every run's throughput, and whether the figures come from a noisy run."""
    if not summaries:
        return {}
    foreign = list(foreign) if foreign is not None else [None] * len(summaries)
    used = [summaries[i] for i in clean_runs(foreign, threshold)]
    used_foreign = [foreign[i] for i in clean_runs(foreign, threshold) if foreign[i] is not None]

    def med(get) -> float | None:
        xs = [v for v in (get(s) for s in used) if v is not None]
        return median(xs) if xs else None

    return {
        "runs": len(summaries),
        "runs_used": len(used),
        "tok_s": med(lambda s: s["tok_s"]),
        "tok_s_all": [s["tok_s"] for s in summaries],
        "req_s": med(lambda s: s["req_s"]),
        "ttft_p50": med(lambda s: s["ttft_s"]["p50"]),
        "ttft_p95": med(lambda s: s["ttft_s"]["p95"]),
        "itl_p50": med(lambda s: s["itl_s"]["p50"]),
        "latency_p50": med(lambda s: s["latency_s"]["p50"]),
        "latency_p95": med(lambda s: s["latency_s"]["p95"]),
        "latency_p99": med(lambda s: s["latency_s"]["p99"]),
        "errors": sum(s["errors"] for s in used),
        "requests": sum(s["requests"] for s in used),
        "prefill_tok_s": med(lambda s: (s.get("prefill_tok_s") or {}).get("p50")),
        "server_prefill_tok_s": med(lambda s: s.get("server_prefill_tok_s")),
        "prompt_tokens": med(lambda s: (s.get("prompt_tokens") or {}).get("p50")),
        "cpu_s_per_1k": med(lambda s: s.get("cpu_s_per_1k")),
        "peak_rss": med(lambda s: s.get("peak_rss")),
        "ttft_by_turn": {t: med(lambda s, t=t: ((s.get("ttft_by_turn") or {}).get(t) or {}).get("p50"))
                         for t in sorted({t for s in used for t in (s.get("ttft_by_turn") or {})}, key=int)},
        "foreign_cpu": max(used_foreign) if used_foreign else None,
        "noisy": bool(used_foreign) and max(used_foreign) > threshold,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


def difference(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return a - b
