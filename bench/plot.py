"""The run's PNG: one column per workload, aggregate tok/s above, time to first token p50 below.

For the multi-turn workload the lower panel shows TTFT p50 by turn at the run's largest level
instead (the turn is what the history's growth costs); for the long prompt, the prefill rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import CEILING, table_rows, title, workloads


def _log_x(ax: Any, levels: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.minorticks_off()
    ax.set_xlabel("concurrent requests")


def plot(run: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = workloads(run) or ["raw"]
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names) + 0.6, 6.4), dpi=100, squeeze=False)
    for col, workload in enumerate(names):
        rows = table_rows(run, workload)
        levels = sorted({c for by_c in rows.values() for c in by_c}) or [1]
        ax_tok, ax_low = axes[0][col], axes[1][col]
        for target, by_c in rows.items():
            cs = sorted(by_c)
            style = {"linestyle": "--"} if target == CEILING else {}
            ax_tok.plot(cs, [by_c[c]["tok_s"] for c in cs], marker="o", label=target, **style)
            if workload == "multiturn":
                by_turn = by_c[max(cs)].get("ttft_by_turn") or {}
                turns = sorted(by_turn, key=int)
                ax_low.plot([int(t) for t in turns], [by_turn[t] for t in turns], marker="o", label=target, **style)
            elif workload == "long":
                ax_low.plot(cs, [by_c[c].get("prefill_tok_s") for c in cs], marker="o", label=target, **style)
            else:
                ax_low.plot(cs, [by_c[c]["ttft_p50"] for c in cs], marker="o", label=target, **style)
        _log_x(ax_tok, levels)
        ax_tok.set_title(f"{title(workload)}\naggregate output tokens/s", fontsize=9)
        ax_tok.set_ylim(bottom=0)
        if workload == "multiturn":
            ax_low.set_xlabel(f"turn (C = {max(levels)})")
            ax_low.set_title("TTFT p50 by turn (s)", fontsize=9)
            ax_low.set_ylim(bottom=0)
        elif workload == "long":
            _log_x(ax_low, levels)
            ax_low.set_title("prefill: prompt tokens / TTFT", fontsize=9)
            ax_low.set_ylim(bottom=0)
        else:
            _log_x(ax_low, levels)
            ax_low.set_title("TTFT p50 (s)", fontsize=9)
            ttfts = [r["ttft_p50"] for by_c in rows.values() for r in by_c.values() if r["ttft_p50"]]
            if ttfts and max(ttfts) / min(ttfts) > 20:  # Ollama's queue: 0.1 s at C=1, 25 s at C=32
                ax_low.set_yscale("log")
            else:
                ax_low.set_ylim(bottom=0)
        for ax in (ax_tok, ax_low):
            ax.grid(alpha=0.3)
        ax_tok.legend(fontsize=7)
    m = run.get("machine", {})
    fig.suptitle(f"{run.get('started_at', '')[:10]} · {m.get('cpu_model', '')}, {m.get('logical_cpus', '?')} CPUs, "
                 f"{m.get('memory_gib', '?')} GiB · {m.get('engine_package') or ''}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
