"""The README's benchmark section, from one run: the headline tables, every figure measured in that run.

    tok/s by workload    vllama, the engine alone, Ollama default (1 slot), Ollama tuned (C slots),
                         and vllama's ratio to each Ollama, at every level
    multi-turn           time to first token by turn
    long prompt          prompt tokens per second of time to first token (the prefill rate)
    efficiency           CPU seconds per 1,000 generated tokens, every target, workload and level
    load and memory      server start, first load, reload after an unload, peak RSS of each server

A column whose target did not run says so ("not measured", and why, for Ollama).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from .report import CEILING, Rows, foreign_line, mib, num, table_rows, targets_lines, title, workloads
from .stats import ratio

NOT_MEASURED = "not measured"
COLUMNS = (("vllama", "vllama"), ("engine alone", CEILING), ("Ollama default (1 slot)", "ollama-default"),
           ("Ollama tuned (C slots)", "ollama-tuned"))


def roles(rows: Rows) -> dict[str, str | None]:
    """Which target fills each headline column: `vllama`, `ceiling`, `ollama-default` (or a plain
    `ollama` target) and `ollama-tuned`."""
    names = list(rows)
    out: dict[str, str | None] = {"vllama": "vllama" if "vllama" in names else next(
        (n for n in names if n != CEILING and not n.startswith(("ollama", CEILING))), None)}
    out[CEILING] = CEILING if CEILING in names else None
    out["ollama-default"] = "ollama-default" if "ollama-default" in names else next(
        (n for n in names if n.startswith("ollama") and n != "ollama-tuned"), None)
    out["ollama-tuned"] = "ollama-tuned" if "ollama-tuned" in names else None
    return out


def _cell(rows: Rows, target: str | None, c: int, key: str, fmt: str) -> str:
    if target is None:
        return NOT_MEASURED
    r = rows.get(target, {}).get(c)
    if not r:
        return "–"
    return num(r.get(key), fmt) + (" *noisy*" if r.get("noisy") else "")


def _levels(rows: Rows) -> list[int]:
    return sorted({c for by_c in rows.values() for c in by_c})


def throughput_table(rows: Rows) -> list[str]:
    who = roles(rows)
    lines = ["| C | " + " | ".join(f"{label} tok/s" for label, _ in COLUMNS) + " | vllama / default | vllama / tuned |",
             "|---|" + "---|" * (len(COLUMNS) + 2)]
    for c in _levels(rows):
        cells = [_cell(rows, who[key], c, "tok_s", "{:.1f}") for _, key in COLUMNS]
        mine = (rows.get(who["vllama"] or "", {}).get(c) or {}).get("tok_s")
        for key in ("ollama-default", "ollama-tuned"):
            theirs = (rows.get(who[key] or "", {}).get(c) or {}).get("tok_s")
            measured = who[key] is not None and who["vllama"] is not None
            cells.append(num(ratio(mine, theirs), "{:.2f}x") if measured else NOT_MEASURED)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Time to first token p50 / latency p95, seconds:", "",
              "| C | " + " | ".join(label for label, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for c in _levels(rows):
        cells = []
        for _, key in COLUMNS:
            ttft = _cell(rows, who[key], c, "ttft_p50", "{:.3f}")
            p95 = _cell(rows, who[key], c, "latency_p95", "{:.2f}")
            cells.append(ttft if ttft in (NOT_MEASURED, "–") else f"{ttft} / {p95}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def turns_table(rows: Rows) -> list[str]:
    turns = sorted({t for by_c in rows.values() for r in by_c.values() for t in (r.get("ttft_by_turn") or {})}, key=int)
    who = roles(rows)
    lines = ["| C | target | " + " | ".join(f"turn {t} TTFT p50 s" for t in turns) + " | tok/s |",
             "|---|---|" + "---|" * (len(turns) + 1)]
    for c in _levels(rows):
        for label, key in COLUMNS:
            target = who[key]
            if target is None:
                lines.append(f"| {c} | {label} | " + " | ".join([NOT_MEASURED] * (len(turns) + 1)) + " |")
                continue
            r = rows[target].get(c) or {}
            by_turn = r.get("ttft_by_turn") or {}
            lines.append(f"| {c} | {label} | " + " | ".join(num(by_turn.get(t), "{:.3f}") for t in turns)
                         + f" | {num(r.get('tok_s'))} |")
    return lines


def prefill_table(rows: Rows) -> list[str]:
    who = roles(rows)
    lines = ["| C | target | prompt tokens | prefill tok/s (prompt tokens / TTFT) | server's prefill tok/s "
             "| TTFT p50 s |", "|---|---|---|---|---|---|"]
    for c in _levels(rows):
        for label, key in COLUMNS:
            target = who[key]
            if target is None:
                lines.append(f"| {c} | {label} | " + " | ".join([NOT_MEASURED] * 4) + " |")
                continue
            r = rows[target].get(c) or {}
            lines.append(f"| {c} | {label} | {num(r.get('prompt_tokens'), '{:.0f}')} "
                         f"| {num(r.get('prefill_tok_s'), '{:.0f}')} | {num(r.get('server_prefill_tok_s'), '{:.0f}')} "
                         f"| {num(r.get('ttft_p50'), '{:.3f}')} |")
    return lines


def efficiency_table(run: dict[str, Any]) -> list[str]:
    lines = ["| workload | C | " + " | ".join(label for label, _ in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for w in workloads(run):
        rows = table_rows(run, w)
        who = roles(rows)
        for c in _levels(rows):
            cells = [_cell(rows, who[key], c, "cpu_s_per_1k", "{:.2f}") for _, key in COLUMNS]
            lines.append(f"| {w} | {c} | " + " | ".join(cells) + " |")
    return lines


def _load(entry: dict[str, Any] | None, which: str) -> str:
    probe = (entry or {}).get(which) or {}
    if not probe:
        return "–"
    first, load = probe.get("first_token_s"), probe.get("load_s")
    return num(first, "{:.2f}") + (f" ({load:.2f})" if load is not None else "")


def load_memory_table(run: dict[str, Any]) -> list[str]:
    peaks = (run.get("memory") or {}).get("peak_rss") or {}
    load = run.get("load") or {}
    who = roles({name: {} for name in run.get("targets", {})})
    lines = ["| target | server start s | first request: first token s (load s) | after an unload: first token s "
             "(load s) | peak RSS MiB |", "|---|---|---|---|---|"]
    for label, key in COLUMNS:
        target = who[key]
        if target is None:
            lines.append(f"| {label} | " + " | ".join([NOT_MEASURED] * 4) + " |")
            continue
        entry = load.get(target) or {}
        start = entry.get("server_start_s") if target != CEILING else entry.get("engine_start_s")
        first = _load(entry, "first")
        if entry.get("loaded_before"):
            first += " (already loaded)"
        lines.append(f"| {label} | {num(start, '{:.2f}')} | {first} | {_load(entry, 'reload')} "
                     f"| {mib(peaks.get(target))} |")
    return lines


def section(run: dict[str, Any]) -> list[str]:
    m = run.get("machine", {})
    w = run.get("workload", {})
    ollama = run.get("ollama") or {}
    argv = run.get("argv")
    lines = [
        f"### Benchmark {run.get('started_at', '')[:10]}",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('logical_cpus', '?')} logical CPUs, "
        f"{m.get('memory_gib', '?')} GiB; {m.get('engine_package') or 'no engine package'}. "
        f"Options on every target {json.dumps(w.get('options', {}))}, streamed, "
        f"{w.get('warmup', 1)} warm-up request(s) per target and workload not counted.",
    ]
    if argv is not None:
        lines += ["", "```", shlex.join(["python", "-m", "bench", *argv]), "```"]
    lines += ["", *targets_lines(run)]
    if ollama and not ollama.get("measured"):
        lines += ["", f"**Ollama columns not measured**: {ollama.get('reason', 'no Ollama in this run')}."]
    for wl in workloads(run):
        rows = table_rows(run, wl)
        lines += ["", f"#### {title(wl)}", ""]
        if wl == "multiturn":
            lines += turns_table(rows)
        elif wl == "long":
            lines += prefill_table(rows)
        else:
            lines += throughput_table(rows)
    lines += ["", "#### CPU seconds per 1,000 generated tokens", "",
              "The CPU time of each server's process tree during the level (the engine alone: its engine core and "
              "the bench process its front end runs in).", "", *efficiency_table(run)]
    lines += ["", "#### Load and memory", "",
              "Server start: until it answered HTTP (the engine alone: its engine start). First token of one short "
              "request as the server came up, and again after `keep_alive: 0` unloaded "
              "the model (the server's load_duration in brackets); peak RSS of the server's process tree over the "
              "run (the engine alone: with the bench process).", "", *load_memory_table(run)]
    lines += ["", *foreign_line(run)]
    return lines
