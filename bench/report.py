"""A run's outputs: the JSON with every raw figure, a markdown table, and a PNG plot.

Each is built from the run dictionary alone, so `python -m bench --report run.json` rebuilds the
table and the plot from a saved run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .machine import NOISY_FOREIGN_SHARE
from .stats import combine, difference, ratio

CEILING = "ceiling"


def table_rows(run: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """target -> concurrency -> that level's runs combined (medians of the clean runs, see stats.combine)."""
    grouped: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for level in run["levels"]:
        grouped.setdefault(level["target"], {}).setdefault(level["concurrency"], []).append(level)
    return {
        target: {c: combine([lvl["summary"] for lvl in levels],
                            [(lvl.get("cpu") or {}).get("foreign") for lvl in levels], NOISY_FOREIGN_SHARE)
                 for c, levels in sorted(by_c.items())}
        for target, by_c in grouped.items()
    }


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def markdown(run: dict[str, Any]) -> str:
    rows = table_rows(run)
    targets = list(rows)
    m = run.get("machine", {})
    w = run.get("workload", {})
    lines = [
        f"### Benchmark {run.get('started_at', '')[:10]}",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('logical_cpus', '?')} logical CPUs, "
        f"{m.get('memory_gib', '?')} GiB; {m.get('engine_package') or 'no engine package'}. "
        f"Workload: R = max(2C, 8) requests, at most C in flight, options {json.dumps(w.get('options', {}))}, "
        f"{'chat (/api/chat)' if w.get('chat') else 'raw prompts (/api/generate)'}, streamed, "
        f"{w.get('warmup', 1)} warm-up request(s) per target not counted"
        + ".",
        "",
        "Where a level ran more than once (`--repeat`, `--retry-noisy`), its figures are the medians of the runs "
        "in which other processes used under 10 % of the CPU (else of the least noisy run, marked *noisy*); "
        "tok/s lists every run in brackets.",
        "",
    ]
    for name, info in run.get("targets", {}).items():
        details = info.get("details") or {}
        fmt = details.get("format") or info.get("format") or "?"
        quant = details.get("quantization_level") or (info.get("engine_kwargs") or {}).get("dtype") or "?"
        extra = f", OLLAMA_NUM_PARALLEL={run['ollama_num_parallel']}" if name.startswith("ollama") and run.get(
            "ollama_num_parallel") else ""
        where = info.get("url") or "in-process AsyncLLM"
        layout = f", engine layout {info['layout']}" if info.get("layout") else ""
        lines.append(f"- **{name}**: {info.get('version') or '?'} at {where}, model `{info.get('model')}` "
                     f"({fmt}, {quant}){layout}{extra}")
    if any(lvl.get("profile") for lvl in run["levels"]):
        lines += ["", "**Profiled run** (py-spy sampled the targets): its figures are not for quoting."]
    lines += ["", "| C | target | tok/s | req/s | TTFT p50 s | TTFT p95 s | ITL p50 ms | latency p50 s "
              "| latency p95 s | latency p99 s | errors | foreign CPU |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    levels = sorted({c for by_c in rows.values() for c in by_c})
    for c in levels:
        for t in targets:
            r = rows[t].get(c)
            if not r:
                continue
            tok = _num(r["tok_s"])
            if r["runs"] > 1:
                tok += " (" + " / ".join(f"{v:.1f}" for v in r["tok_s_all"]) + ")"
            noisy = " *noisy*" if r["noisy"] else ""
            lines.append(
                f"| {c} | {t} | {tok} | {_num(r['req_s'], '{:.2f}')} | {_num(r['ttft_p50'], '{:.3f}')} "
                f"| {_num(r['ttft_p95'], '{:.3f}')} | {_num(r['itl_p50'] and 1000 * r['itl_p50'])} "
                f"| {_num(r['latency_p50'], '{:.2f}')} | {_num(r['latency_p95'], '{:.2f}')} "
                f"| {_num(r['latency_p99'], '{:.2f}')} | {r['errors']}/{r['requests']} | {_pct(r['foreign_cpu'])}{noisy} |")
    if CEILING in rows and len(targets) > 1:
        others = [t for t in targets if t != CEILING]
        lines += ["", "Against the engine alone (`ceiling`): throughput ratio, TTFT p50 difference.", "",
                  "| C | " + " | ".join(f"{t} tok/s ratio | {t} TTFT p50 +ms" for t in others) + " |",
                  "|---|" + "---|---|" * len(others)]
        for c in levels:
            ceil = rows[CEILING].get(c) or {}
            cells = []
            for t in others:
                r = rows[t].get(c) or {}
                noisy = " *noisy*" if r.get("noisy") or ceil.get("noisy") else ""
                cells.append(_num(ratio(r.get("tok_s"), ceil.get("tok_s")), "{:.2f}x") + noisy)
                delta = difference(r.get("ttft_p50"), ceil.get("ttft_p50"))
                cells.append(_num(delta and 1000 * delta, "{:+.0f}") + noisy)
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    cpu = run.get("cpu") or {}
    if cpu:
        reported = [r["foreign_cpu"] for by_c in rows.values() for r in by_c.values() if r["foreign_cpu"] is not None]
        noisy_rows = sum(r["noisy"] for by_c in rows.values() for r in by_c.values())
        lines += ["", f"Foreign CPU (other processes, share of the whole machine): over every measured run mean "
                      f"{_pct(cpu.get('foreign_mean'))}, worst {_pct(cpu.get('foreign_max'))}; in the figures above "
                      f"worst {_pct(max(reported) if reported else None)}"
                      + (f" — **{noisy_rows} noisy row(s)** (above 10 %)" if noisy_rows else "") + "."]
    return "\n".join(lines) + "\n"


def plot(run: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table_rows(run)
    fig, (ax_tok, ax_ttft) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    levels = sorted({c for by_c in rows.values() for c in by_c})
    for target, by_c in rows.items():
        cs = sorted(by_c)
        style = {"linestyle": "--"} if target == CEILING else {}
        ax_tok.plot(cs, [by_c[c]["tok_s"] for c in cs], marker="o", label=target, **style)
        ax_ttft.plot(cs, [by_c[c]["ttft_p50"] for c in cs], marker="o", label=target, **style)
    for ax, title in ((ax_tok, "aggregate output tokens/s"), (ax_ttft, "TTFT p50 (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent requests")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    ax_tok.set_ylim(bottom=0)
    ttfts = [r["ttft_p50"] for by_c in rows.values() for r in by_c.values() if r["ttft_p50"]]
    if ttfts and max(ttfts) / min(ttfts) > 20:  # Ollama's queue: 0.1 s at C=1, 25 s at C=32
        ax_ttft.set_yscale("log")
    else:
        ax_ttft.set_ylim(bottom=0)
    ax_tok.legend(fontsize=8)
    m = run.get("machine", {})
    fig.suptitle(f"{run.get('started_at', '')[:10]} · {m.get('cpu_model', '')}, {m.get('logical_cpus', '?')} CPUs, "
                 f"{m.get('memory_gib', '?')} GiB · {m.get('engine_package') or ''}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_all(run: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    paths["json"].write_text(json.dumps(run, indent=1, default=str) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(run), encoding="utf-8")
    plot(run, paths["png"])
    return paths
