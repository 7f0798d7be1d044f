"""A run's outputs: the JSON with every raw figure, the markdown, and a PNG plot.

The markdown is the README's benchmark section (bench/readme.py: the headline tables) followed by
every figure of every target and level, folded. Each output is built from the run dictionary
alone, so `python -m bench --report run.json` rebuilds them from a saved run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .machine import NOISY_FOREIGN_SHARE
from .stats import combine, difference, ratio
from .workload_kinds import KINDS, describe

CEILING = "ceiling"

Rows = dict[str, dict[int, dict[str, Any]]]  # target -> concurrency -> combined figures


def workload_of(run: dict[str, Any], level: dict[str, Any]) -> str:
    """A level's workload; runs saved before there were several name it in the run's `workload`."""
    return level.get("workload") or ("chat" if (run.get("workload") or {}).get("chat") else "raw")


def title(workload: str) -> str:
    return describe(workload) if workload in KINDS else workload


def workloads(run: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(workload_of(run, lvl) for lvl in run["levels"]))


def table_rows(run: dict[str, Any], workload: str | None = None) -> Rows:
    """target -> concurrency -> that level's runs combined (medians of the clean runs, see stats.combine),
    for one workload (default: the run's first)."""
    workload = workload or (workloads(run) or ["raw"])[0]
    grouped: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for level in run["levels"]:
        if workload_of(run, level) == workload:
            grouped.setdefault(level["target"], {}).setdefault(level["concurrency"], []).append(level)
    return {
        target: {c: combine([lvl["summary"] for lvl in levels],
                            [(lvl.get("cpu") or {}).get("foreign") for lvl in levels], NOISY_FOREIGN_SHARE)
                 for c, levels in sorted(by_c.items())}
        for target, by_c in grouped.items()
    }


def num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def mib(value: float | None) -> str:
    return "–" if value is None else f"{value / (1 << 20):.0f}"


def targets_lines(run: dict[str, Any]) -> list[str]:
    lines = []
    for name, info in run.get("targets", {}).items():
        details = info.get("details") or {}
        fmt = details.get("format") or info.get("format") or "?"
        quant = details.get("quantization_level") or (info.get("engine_kwargs") or {}).get("dtype") or "?"
        extra = ""
        if info.get("launched"):
            slots = "C (each level's)" if info.get("num_parallel_policy") == "per-level" else info.get("num_parallel")
            extra = (f", started by the bench, OLLAMA_NUM_PARALLEL={slots}, "
                     f"OLLAMA_CONTEXT_LENGTH={info.get('context_length')}")
        elif name.startswith("ollama") and run.get("ollama_num_parallel"):
            extra = f", OLLAMA_NUM_PARALLEL={run['ollama_num_parallel']}"
        where = info.get("url") or "in-process AsyncLLM"
        layout = f", engine layout {info['layout']}" if info.get("layout") else ""
        lines.append(f"- **{name}**: {info.get('version') or '?'} at {where}, model `{info.get('model')}` "
                     f"({fmt}, {quant}){layout}{extra}")
    return lines


def level_table(rows: Rows) -> list[str]:
    """Every target at every level of one workload."""
    lines = ["| C | target | tok/s | req/s | TTFT p50 s | TTFT p95 s | ITL p50 ms | latency p50 s | latency p95 s "
             "| latency p99 s | CPU s / 1k tok | peak RSS MiB | errors | foreign CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in sorted({c for by_c in rows.values() for c in by_c}):
        for t, by_c in rows.items():
            r = by_c.get(c)
            if not r:
                continue
            tok = num(r["tok_s"])
            if r["runs"] > 1:
                tok += " (" + " / ".join(f"{v:.1f}" for v in r["tok_s_all"]) + ")"
            noisy = " *noisy*" if r["noisy"] else ""
            lines.append(
                f"| {c} | {t} | {tok} | {num(r['req_s'], '{:.2f}')} | {num(r['ttft_p50'], '{:.3f}')} "
                f"| {num(r['ttft_p95'], '{:.3f}')} | {num(r['itl_p50'] and 1000 * r['itl_p50'])} "
                f"| {num(r['latency_p50'], '{:.2f}')} | {num(r['latency_p95'], '{:.2f}')} "
                f"| {num(r['latency_p99'], '{:.2f}')} | {num(r.get('cpu_s_per_1k'), '{:.2f}')} "
                f"| {mib(r.get('peak_rss'))} | {r['errors']}/{r['requests']} | {pct(r['foreign_cpu'])}{noisy} |")
    return lines


def ceiling_table(rows: Rows) -> list[str]:
    if CEILING not in rows or len(rows) < 2:
        return []
    others = [t for t in rows if t != CEILING]
    lines = ["Against the engine alone (`ceiling`): throughput ratio, TTFT p50 difference.", "",
             "| C | " + " | ".join(f"{t} tok/s ratio | {t} TTFT p50 +ms" for t in others) + " |",
             "|---|" + "---|---|" * len(others)]
    for c in sorted({c for by_c in rows.values() for c in by_c}):
        ceil = rows[CEILING].get(c) or {}
        cells = []
        for t in others:
            r = rows[t].get(c) or {}
            noisy = " *noisy*" if r.get("noisy") or ceil.get("noisy") else ""
            cells.append(num(ratio(r.get("tok_s"), ceil.get("tok_s")), "{:.2f}x") + noisy)
            delta = difference(r.get("ttft_p50"), ceil.get("ttft_p50"))
            cells.append(num(delta and 1000 * delta, "{:+.0f}") + noisy)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def foreign_line(run: dict[str, Any]) -> list[str]:
    cpu = run.get("cpu") or {}
    if not cpu:
        return []
    all_rows = [table_rows(run, w) for w in workloads(run)]
    reported = [r["foreign_cpu"] for rows in all_rows for by_c in rows.values() for r in by_c.values()
                if r["foreign_cpu"] is not None]
    noisy_rows = sum(r["noisy"] for rows in all_rows for by_c in rows.values() for r in by_c.values())
    return [f"Foreign CPU (other processes, share of the whole machine): over every measured run mean "
            f"{pct(cpu.get('foreign_mean'))}, worst {pct(cpu.get('foreign_max'))}; in the figures above "
            f"worst {pct(max(reported) if reported else None)}"
            + (f" — **{noisy_rows} noisy row(s)** (above 10 %)" if noisy_rows else "") + "."]


def details(run: dict[str, Any]) -> list[str]:
    """Every figure: per workload, each target at each level, and the ratio to the engine alone."""
    lines = ["Where a level ran more than once (`--repeat`, `--retry-noisy`), its figures are the medians of the "
             "runs in which other processes used under 10 % of the CPU (else of the least noisy run, marked "
             "*noisy*); tok/s lists every run in brackets.", ""]
    for w in workloads(run):
        rows = table_rows(run, w)
        lines += [f"#### {title(w)}", "", *level_table(rows), ""]
        ceiling = ceiling_table(rows)
        if ceiling:
            lines += [*ceiling, ""]
    return lines


def markdown(run: dict[str, Any]) -> str:
    from .readme import section

    lines = section(run)
    if any(lvl.get("profile") for lvl in run["levels"]):
        lines += ["", "**Profiled run** (py-spy sampled the targets): its figures are not for quoting."]
    lines += ["", "<details><summary>Every figure of this run</summary>", "", *details(run), "</details>"]
    return "\n".join(lines) + "\n"


def write_all(run: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    from .plot import plot

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    paths["json"].write_text(json.dumps(run, indent=1, default=str) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(run), encoding="utf-8")
    plot(run, paths["png"])
    return paths
