"""The CLI's formats, checked against what Ollama's Go code prints for the same values."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from vllama.cli.display import (ProgressView, go_duration, human_bytes, human_duration, human_time, metrics_summary,
                                parse_time, show_info, table)
from vllama.cli.models import processor


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (999, "999 B"), (1000, "1 KB"), (1500, "1.5 KB"), (878_000, "878 KB"),
    (541_000_000, "541 MB"), (2_019_393_189, "2.0 GB"), (1_000_000_000, "1 GB"), (12_345_678_901, "12 GB"),
    (3_500_000_000_000, "3.5 TB"),
])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize("seconds, text", [
    (0.2, "Less than a second"), (1, "1 second"), (42, "42 seconds"), (61, "About a minute"),
    (150, "2 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"), (3 * 86400, "3 days"),
    (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_human_time_past_future_forever():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    assert human_time(now - timedelta(minutes=2, seconds=5), now=now) == "2 minutes ago"
    assert human_time(now + timedelta(minutes=4, seconds=59), now=now) == "4 minutes from now"
    assert human_time(now + timedelta(days=365 * 200), now=now) == "Forever"
    assert human_time(None, "Never") == "Never"


def test_parse_time_reads_go_timestamps():
    t = parse_time("2026-03-02T09:15:04.51230811+01:00")
    assert t == datetime(2026, 3, 2, 8, 15, 4, 512308, tzinfo=timezone.utc)
    assert parse_time("2026-03-02T09:15:04Z") == datetime(2026, 3, 2, 9, 15, 4, tzinfo=timezone.utc)
    assert parse_time("not a time") is None and parse_time(None) is None


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (850, "850ns"), (1500, "1.5µs"), (99_701_288, "99.701288ms"), (1_000_000_000, "1s"),
    (11_209_806_676, "11.209806676s"), (74_234_054_160, "1m14.23405416s"), (3_600_000_000_000, "1h0m0s"),
    (-2_500_000_000, "-2.5s"),
])
def test_go_duration(ns, text):
    assert go_duration(ns) == text


def test_metrics_summary_like_ollama_verbose():
    final = {"total_duration": 1_500_000_000, "load_duration": 250_000_000, "prompt_eval_count": 12,
             "prompt_eval_duration": 100_000_000, "eval_count": 8, "eval_duration": 400_000_000}
    assert metrics_summary(final).splitlines() == [
        "total duration:       1.5s",
        "load duration:        250ms",
        "prompt eval count:    12 token(s)",
        "prompt eval duration: 100ms",
        "prompt eval rate:     120.00 tokens/s",
        "eval count:           8 token(s)",
        "eval duration:        400ms",
        "eval rate:            20.00 tokens/s",
    ]
    assert metrics_summary({}) == ""


def test_table_aligns_columns_with_four_spaces():
    out = table([["tiny:latest", "57f171042a2c", "878 KB"], ["smollm2:135m", "e54037de82e0", "541 MB"]],
                ["NAME", "ID", "SIZE"])
    assert out.splitlines() == [
        "NAME            ID              SIZE",
        "tiny:latest     57f171042a2c    878 KB",
        "smollm2:135m    e54037de82e0    541 MB",
    ]


@pytest.mark.parametrize("size, vram, text", [(100, 0, "100% CPU"), (100, 100, "100% GPU"),
                                               (100, 25, "75%/25% CPU/GPU"), (100, 200, "Unknown")])
def test_processor(size, vram, text):
    assert processor(size, vram) == text


def test_show_info_sections():
    resp = {
        "details": {"parameter_size": "134.52M", "quantization_level": "F32"},
        "model_info": {"general.architecture": "llama", "llama.context_length": 8192, "llama.embedding_length": 576},
        "capabilities": ["completion", "tools"],
        "parameters": 'stop                           "<|im_end|>"\ntemperature                    0.2',
        "system": "line one\nline two\nline three",
        "license": "Apache 2.0",
    }
    assert show_info(resp) == "\n".join([
        "  Model",
        "    architecture        llama",
        "    parameters          134.52M",
        "    context length      8192",
        "    embedding length    576",
        "    quantization        F32",
        "",
        "  Capabilities",
        "    completion",
        "    tools",
        "",
        "  Parameters",
        '    stop           "<|im_end|>"',
        "    temperature    0.2",
        "",
        "  System",
        "    line one",
        "    line two",
        "    ...",
        "",
        "  License",
        "    Apache 2.0",
        "",
    ]) + "\n"


def test_progress_view_orders_bars_and_statuses():
    out = io.StringIO()
    digest = "sha256:" + "ab" * 32
    with ProgressView(out) as view:
        view.update({"status": "pulling manifest"})
        view.update({"status": "pulling ababababab", "digest": digest, "total": 2_000_000, "completed": 0})
        view.update({"status": "pulling ababababab", "digest": digest, "total": 2_000_000, "completed": 2_000_000})
        view.update({"status": "verifying sha256 digest"})
        view.update({"status": "writing manifest"})
        view.update({"status": "success"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "pulling manifest"
    assert lines[1].startswith("pulling ababababab") and "100%" in lines[1] and "2.0/2.0 MB" in lines[1]
    assert lines[2:] == ["verifying sha256 digest", "writing manifest", "success"]
