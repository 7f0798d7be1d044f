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
    }


def combine(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Repeats of one (target, level): the median of each headline figure, and every throughput value."""
    if not summaries:
        return {}

    def med(get) -> float | None:
        xs = [v for v in (get(s) for s in summaries) if v is not None]
        return median(xs) if xs else None

    return {
        "runs": len(summaries),
        "tok_s": med(lambda s: s["tok_s"]),
        "tok_s_all": [s["tok_s"] for s in summaries],
        "req_s": med(lambda s: s["req_s"]),
        "ttft_p50": med(lambda s: s["ttft_s"]["p50"]),
        "ttft_p95": med(lambda s: s["ttft_s"]["p95"]),
        "itl_p50": med(lambda s: s["itl_s"]["p50"]),
        "latency_p50": med(lambda s: s["latency_s"]["p50"]),
        "latency_p95": med(lambda s: s["latency_s"]["p95"]),
        "latency_p99": med(lambda s: s["latency_s"]["p99"]),
        "errors": sum(s["errors"] for s in summaries),
        "requests": sum(s["requests"] for s in summaries),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


def difference(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return a - b
