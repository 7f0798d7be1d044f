"""`python -m bench --ollama` end to end on the stand-in program: both Ollama configurations, every
workload, the load probe, memory and CPU columns, the README section; stopping everything on
Ctrl-C; and a run without an Ollama, whose report says its columns were not measured.
Figures are checked for presence and shape, never for speed."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from bench.ollama_server import OllamaServer
from tests.bench.test_ollama_server import runner_pids, wait_gone

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--no-progress", "--pause", "0", "--settle", "0", "--num-predict", "4", "--warmup", "1"]


def _bench(*argv, timeout=240):
    return subprocess.run([sys.executable, "-m", "bench", *QUICK, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _server_pids(*logs: Path) -> list[int]:
    return [int(p) for log in logs for p in re.findall(r" pid=(\d+)", log.read_text())] + \
        [p for log in logs for p in runner_pids(log)]


def test_every_workload_against_both_ollama_configurations(tmp_path, gguf, standin):
    proc = _bench("--ollama", standin, "--ollama-gguf", str(gguf), "--model", "m", "--concurrency", "1,2",
                  "--workloads", "raw,chat,multiturn,long,json", "--levels-for", "long=1", "--long-tokens", "300",
                  "--turns", "3", "--out", str(tmp_path), "--name", "so")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "so.json").read_text())
    md = (tmp_path / "so.md").read_text()
    assert (tmp_path / "so.png").read_bytes()[:4] == b"\x89PNG"
    assert run["ollama"]["measured"] is True and run["ollama"]["gguf"] == "weights.gguf"
    assert set(run["targets"]) == {"ollama-default", "ollama-tuned"}
    assert run["targets"]["ollama-tuned"]["num_parallel_policy"] == "per-level"

    levels = {(lvl["workload"], lvl["target"], lvl["concurrency"]): lvl for lvl in run["levels"]}
    expected = {(w, t, c) for w in ("raw", "chat", "multiturn", "json") for t in run["targets"] for c in (1, 2)}
    expected |= {("long", t, 1) for t in run["targets"]}
    assert set(levels) == expected and len(run["levels"]) == len(expected)
    assert all(lvl["summary"]["errors"] == 0 for lvl in run["levels"])
    assert {c: lvl["num_parallel"] for (w, t, c), lvl in levels.items() if t == "ollama-tuned"} == {1: 1, 2: 2}
    assert {lvl["num_parallel"] for (w, t, c), lvl in levels.items() if t == "ollama-default"} == {1}
    assert [(r["target"], r["concurrency"]) for r in run["restarts"]] == [("ollama-tuned", 2)]

    multi = levels[("multiturn", "ollama-default", 2)]
    assert multi["summary"]["requests"] == 4 * 3  # max(C, 4) conversations of 3 turns
    assert set(multi["summary"]["ttft_by_turn"]) == {"1", "2", "3"}
    turns = [r for r in multi["requests"] if r["index"] == 0]
    assert [r["turn"] for r in turns] == [1, 2, 3]
    assert turns[0]["server"]["prompt_eval_count"] < turns[2]["server"]["prompt_eval_count"]  # history grows
    long = levels[("long", "ollama-tuned", 1)]["summary"]
    assert long["prompt_tokens"]["p50"] > 150 and long["prefill_tok_s"]["p50"] > 0 and long["server_prefill_tok_s"]
    for lvl in run["levels"]:
        assert lvl["summary"]["cpu_s_per_1k"] is not None and lvl["summary"]["peak_rss"] > 0
        assert lvl["cpu"]["cpu_s"][lvl["target"]] >= 0
    for name in run["targets"]:
        load = run["load"][name]
        assert load["loaded_before"] is False and load["server_start_s"] > 0
        assert load["first"]["load_s"] > 0 and load["reload"]["load_s"] > 0  # a reload after the unload
        assert run["memory"]["peak_rss"][name] > 0

    assert md in proc.stdout
    assert ("| C | vllama tok/s | engine alone tok/s | Ollama default (1 slot) tok/s "
            "| Ollama tuned (C slots) tok/s") in md
    figure = r"[\d.]+(?: \*noisy\*)?"  # other people's work on a shared machine marks a row noisy
    assert re.search(rf"\| 2 \| not measured \| not measured \| {figure} \| {figure} "
                     r"\| not measured \| not measured \|", md)
    assert "turn 3 TTFT p50 s" in md and "prefill tok/s" in md and "CPU seconds per 1,000" in md
    assert "| Ollama tuned (C slots) | " in md and "OLLAMA_NUM_PARALLEL=C (each level's)" in md
    assert "**Ollama columns not measured**" not in md
    assert "python -m bench " in md  # the command that made it

    logs = [tmp_path / "so-ollama-default.log", tmp_path / "so-ollama-tuned.log"]
    pids = _server_pids(*logs)
    assert len(pids) >= 5  # two servers, a restart, their runners
    assert wait_gone(pids) == []


def test_ctrl_c_stops_every_ollama_and_keeps_what_was_measured(tmp_path, gguf, standin):
    proc = subprocess.Popen([sys.executable, "-m", "bench", *QUICK, "--ollama", standin, "--ollama-gguf",
                             str(gguf), "--model", "m", "--concurrency", ",".join(["1", "2"] * 20),
                             "--out", str(tmp_path), "--name", "cut"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # the first finished level
            if "C=" in line and "tok/s" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130, rest[-2000:]
    run = json.loads((tmp_path / "cut.json").read_text())
    assert 1 <= len(run["levels"]) < 80
    pids = _server_pids(tmp_path / "cut-ollama-default.log", tmp_path / "cut-ollama-tuned.log")
    assert pids and wait_gone(pids) == []


def test_without_an_ollama_the_run_goes_on_and_says_so(tmp_path, gguf, standin):
    other = OllamaServer(standin, tmp_path / "other", 1, tmp_path / "other.log")  # plays vllama here
    try:
        other.start()
        other.create("m", gguf)
        proc = _bench("--target", f"vllama={other.url}", "--ollama", str(tmp_path / "no-such-ollama"),
                      "--model", "m", "--concurrency", "1", "--workloads", "raw,json", "--out", str(tmp_path),
                      "--name", "alone")
    finally:
        other.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "alone.json").read_text())
    assert run["ollama"]["measured"] is False and "no ollama program found" in run["ollama"]["reason"]
    assert {lvl["target"] for lvl in run["levels"]} == {"vllama"}
    md = (tmp_path / "alone.md").read_text()
    assert "**Ollama columns not measured**: no ollama program found" in md
    assert re.search(r"\| 1 \| [\d.]+(?: \*noisy\*)? \| not measured \| not measured \| not measured "
                     r"\| not measured \| not measured \|", md)
    assert "| Ollama default (1 slot) | not measured | not measured |" in md
    assert "JSON mode (/api/chat, format json)" in md
