"""bench.__main__ / bench.session: argument checks and the engine flags passed on to `vllama serve`."""

import pytest

from bench.__main__ import parse_args
from bench.session import build_targets, serve_argv


def test_levels_targets_and_defaults():
    args = parse_args(["--target", "vllama=http://h:1", "--target", "ollama=http://h:2", "--model", "m"])
    assert args.levels == [1, 4, 16, 32]
    assert args.targets == [("vllama", "http://h:1"), ("ollama", "http://h:2")]
    assert (args.num_predict, args.temperature, args.seed, args.repeat_penalty) == (64, 0.0, 1, 1.0)
    assert not args.chat and args.warmup == 1


@pytest.mark.parametrize("argv", [
    [],  # no target at all
    ["--target", "vllama=http://h:1"],  # an HTTP target needs --model
    ["--serve", "--target", "vllama=http://h:1", "--model", "m"],  # --serve is 'vllama' already
    ["--serve", "--model", "m", "--concurrency", "0"],
    ["--serve", "--model", "m", "--concurrency", "a,b"],
])
def test_bad_arguments_exit(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_the_ceiling_alone_needs_no_model_name():
    assert parse_args(["--target", "ceiling=/some/folder"]).targets == [("ceiling", "/some/folder")]
    args = parse_args(["--target", "ceiling=m", "--target", "ceiling-folder=/some/folder"])
    assert [t.kind for t in build_targets(args, None)] == ["ceiling", "ceiling"]


def test_engine_flags_pass_through_to_serve_and_the_ceiling_reads_the_same():
    args = parse_args(["--serve", "--model", "m", "--max-num-seqs", "64", "--no-enforce-eager",
                       "--engine-arg", "enable_prefix_caching=false", "--engine-layout", "mp",
                       "--target", "ceiling=/some/folder"])
    assert serve_argv(args) == ["--max-num-seqs", "64", "--no-enforce-eager",
                                "--engine-arg", "enable_prefix_caching=false", "--engine-layout", "mp"]
    ceiling, vllama = build_targets(args, {"url": "http://127.0.0.1:5", "pid": 4242})
    assert ceiling.settings.overrides == {"max_num_seqs": 64, "enforce_eager": False,
                                          "enable_prefix_caching": False}
    assert ceiling.settings.inproc_worker is False
    assert (vllama.name, vllama.url, vllama.pid, vllama.model) == ("vllama", "http://127.0.0.1:5", 4242, "m")


def test_per_target_model_names_and_pids():
    args = parse_args(["--target", "ollama=http://10.0.0.1:11434", "--model", "smollm2:135m",
                       "--model-for", "ollama=smollm2:135m-q4", "--pid", "ollama=77"])
    (ollama,) = build_targets(args, None)
    assert ollama.model == "smollm2:135m-q4" and ollama.pid == 77


def test_wait_for_quiet_stops_at_the_first_quiet_window(monkeypatch):
    import asyncio

    import bench.session as session

    verdicts = [True, True, False, True]
    monkeypatch.setattr(session, "cpu_usage", lambda a, b, groups: {"noisy": verdicts.pop(0)})
    waited = asyncio.run(session.wait_for_quiet({"bench": [1]}, limit_s=10, window_s=0.01))
    assert verdicts == [True] and waited < 1  # three windows, the third quiet
    assert asyncio.run(session.wait_for_quiet({}, limit_s=0)) == 0


def test_workloads_their_levels_and_ollama():
    args = parse_args(["--serve", "--model", "m", "--workloads", "raw,multiturn,long", "--concurrency", "1,4",
                       "--levels-for", "long=1,2"])
    assert args.workloads == ["raw", "multiturn", "long"]
    assert args.levels_for == {"raw": [1, 4], "multiturn": [1, 4], "long": [1, 2]}
    assert args.levels_all == [1, 4, 2]
    assert args.ollama is None and args.load_time
    assert parse_args(["--serve", "--model", "m", "--chat"]).workloads == ["chat"]
    args = parse_args(["--ollama", "--model", "m"])  # Ollama alone is a run too
    assert args.ollama == "" and args.ollama_tuned == "per-level"
    assert parse_args(["--ollama", "/opt/ollama", "--model", "m", "--ollama-tuned", "max"]).ollama == "/opt/ollama"


@pytest.mark.parametrize("argv", [
    ["--serve", "--model", "m", "--workloads", "raw,poetry"],
    ["--serve", "--model", "m", "--workloads", "raw,raw"],
    ["--serve", "--model", "m", "--levels-for", "long=1"],  # long is not among the workloads
    ["--serve", "--model", "m", "--workloads", "long", "--levels-for", "long=0"],
    ["--ollama"],  # an HTTP target needs --model
    ["--ollama", "--model", "m", "--target", "ollama-tuned=http://h:1"],
])
def test_bad_workload_and_ollama_arguments_exit(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)
