"""`python -m bench` end to end on the real engine: a few seconds against the live vllama, then one run
that starts its own `vllama serve` next to the in-process ceiling. Figures are reported, never asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ENGINE_ENV, TINY

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]


def _bench(*argv, env=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "bench", "--no-progress", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _outputs(out: Path, stem: str):
    run = json.loads((out / f"{stem}.json").read_text())
    assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    return run, (out / f"{stem}.md").read_text()


def test_bench_against_the_live_server(server, tmp_path):
    proc = _bench("--target", f"vllama={server}", "--model", TINY, "--concurrency", "1,3", "--num-predict", "8",
                  "--pause", "0", "--settle", "0", "--out", str(tmp_path), "--name", "live")
    run, md = _outputs(tmp_path, "live")
    assert "| 1 | vllama |" in md and "| 3 | vllama |" in md and md in proc.stdout
    info = run["targets"]["vllama"]
    assert info["version"] and info["details"]["format"] == "safetensors"
    assert info["pid"]  # found through the listening port, for the CPU accounting
    assert [(lvl["concurrency"], lvl["summary"]["requests"], lvl["summary"]["errors"]) for lvl in run["levels"]] \
        == [(1, 8, 0), (3, 8, 0)]
    for lvl in run["levels"]:
        assert 0 < lvl["summary"]["tokens"] <= 8 * 8
        assert set(lvl["cpu"]["groups"]) == {"vllama", "bench"}
        assert all(r["ttft_s"] is not None and r["eval_count"] >= 1 for r in lvl["requests"])
    assert run["machine"]["logical_cpus"] and run["machine"]["memory_gib"]
    assert run["workload"]["options"] == {"num_predict": 8, "temperature": 0.0, "seed": 1, "repeat_penalty": 1.0}


def test_bench_serves_vllama_itself_next_to_the_ceiling(models_dir, tiny_folder, tmp_path):
    env = {**os.environ, "VLLAMA_MODELS": str(models_dir), **ENGINE_ENV}
    _bench("--serve", "--target", f"ceiling={tiny_folder}", "--model", TINY, "--concurrency", "2",
           "--num-predict", "8", "--pause", "0", "--settle", "0", "--chat", "--out", str(tmp_path), "--name", "served", env=env)
    run, md = _outputs(tmp_path, "served")
    assert set(run["targets"]) == {"vllama", "ceiling"}
    assert run["targets"]["ceiling"]["engine_kwargs"]["kv_cache_memory_bytes"] == 256 << 20  # as vllama's
    assert run["targets"]["vllama"]["serve_command"][:4] == ["python", "-m", "vllama", "serve"]
    assert "tok/s ratio" in md
    assert all(lvl["summary"]["errors"] == 0 for lvl in run["levels"])
    for lvl in run["levels"]:  # each target's own processes did the work of its level
        groups = lvl["cpu"]["groups"]
        assert groups[lvl["target"]] > 0, groups
        assert set(groups) == {"ceiling", "vllama", "bench"}
    pid = run["targets"]["vllama"]["pid"]
    assert not Path(f"/proc/{pid}").exists()  # the served vllama is gone
    assert (tmp_path / "served-serve.log").exists()


def test_sigterm_stops_the_served_vllama_and_keeps_what_was_measured(models_dir, tmp_path):
    env = {**os.environ, "VLLAMA_MODELS": str(models_dir), **ENGINE_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--no-progress", "--serve", "--model", TINY,
                             "--concurrency", "1,1,1,1,1,1,1,1", "--num-predict", "16", "--pause", "0", "--settle", "0",
                             "--out", str(tmp_path), "--name", "cut"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # the first finished level
            if "C=1" in line:
                break
        proc.terminate()
        rest = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130, rest[-2000:]
    run = json.loads((tmp_path / "cut.json").read_text())
    assert 1 <= len(run["levels"]) < 8
    assert not Path(f"/proc/{run['targets']['vllama']['pid']}").exists()
