"""`vllama pull` (and `run`'s pull of a missing model) against a server whose Hub is the local stand-in.

The CLI runs in this process (`cli`) except in a terminal: the live bars and `run`'s chat need a pty."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest

from tests.cli.conftest import assert_one_error_line, cli, cli_env, vllama
from tests.conftest import ENGINE_ENV
from tests.live_server import vllama_process
from tests.models.fake_repo import write_tiny_model
from tests.models.hub_stand_in import HubStandIn

REPO = "acme/Tiny-Instruct"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# name, percentage, bar, bytes, speed, time left
BAR = re.compile(r"pulling [0-9a-f]{12}\s+(\d+)%\s+\S+\s+[\d.]+/2\.0 MB\s+[\d.]+ [kM]B/s\s+\d+:\d\d:\d\d")


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[HubStandIn]:
    root = tmp_path_factory.mktemp("hub")
    stand_in = HubStandIn().start()
    stand_in.add_folder(REPO, write_tiny_model(root / "tiny", rows=4000))  # 1 MB of weights
    stand_in.add_folder("acme/Slow", write_tiny_model(root / "slow", rows=8000))
    stand_in.add_folder("acme/Gated", write_tiny_model(root / "gated"), gated=True)
    yield stand_in
    stand_in.stop()


@contextmanager
def serving_the_hub(hub: HubStandIn, root: Path, **env: str) -> Iterator[str]:
    """`vllama serve` with HF_ENDPOINT at the stand-in and a catalogue naming its repos."""
    catalog = root / "catalog.json"
    catalog.write_text(json.dumps({"models": {
        "tiny": {"1x": REPO, "latest": "1x"}, "slow": {"latest": "acme/Slow"},
        "gated": {"latest": "acme/Gated"}, "real-tiny": {"latest": "acme/Real-Tiny"},
    }}))
    env = {**ENGINE_ENV, "HF_ENDPOINT": hub.url, "VLLAMA_CATALOG": str(catalog), "HF_HUB_OFFLINE": "0",
           "HF_TOKEN": "", "HOME": str(root), **env}
    with vllama_process(root / "models", env=env, log_path=root / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def pull_server(hub, tmp_path_factory) -> Iterator[str]:
    """For the pulls: no model is ever loaded, so neither vLLM's early import (seconds of CPU) nor
    the engine's preloaded CPU libraries (a re-exec of the server at its start)."""
    with serving_the_hub(hub, tmp_path_factory.mktemp("pull-server"), VLLAMA_IMPORT_EARLY="0",
                         VLLAMA_CPU_PRELOAD="0") as url:
        yield url


@pytest.fixture(scope="module")
def engine_pull_server(hub, tmp_path_factory, tiny_folder) -> Iterator[str]:
    """For `run`, which loads what it pulled (the test suite's real random Llama): the engine's
    settings, as `vllama serve` starts for a user."""
    hub.add_folder("acme/Real-Tiny", tiny_folder)
    with serving_the_hub(hub, tmp_path_factory.mktemp("engine-pull-server")) as url:
        yield url


@pytest.fixture
def env(pull_server, home) -> dict[str, str]:
    return cli_env(pull_server, home)


@pytest.fixture
def engine_env(engine_pull_server, home) -> dict[str, str]:
    return cli_env(engine_pull_server, home)


def test_pull_reports_ollama_progress(env, hub):
    result = cli("pull", "tiny", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    weights = hashlib.sha256(hub.repos[REPO].files["model.safetensors"]).hexdigest()
    assert lines[0] == "pulling manifest"
    bar = next(line for line in lines if line.startswith(f"pulling {weights[:12]}"))
    assert "100%" in bar and "1.0/1.0 MB" in bar  # the bar per file, left complete
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert all(re.fullmatch(r"pulling (manifest|[0-9a-f]{12}\b.*)", line) for line in lines[:-3])
    listed = cli("list", env=env).stdout.splitlines()
    assert listed[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert listed[1].startswith("tiny:latest ") and listed[1].endswith("ago") and "MB" in listed[1]


def test_pull_draws_live_bars_in_a_terminal(env, hub):
    """In a terminal the bar moves while bytes arrive: percentage, bytes, speed and time left."""
    # about 0.9 s for 2 MB: the server reports progress every 0.1 s (pull.POLL_SECONDS), the bars
    # redraw 8 times a second, speed and time left are known from the second report on: 3-5 frames
    # caught mid-download here (0.0125 s caught 0-1, too few)
    hub.delay, hub.chunk = 0.03, 64 * 1024
    try:
        child = pexpect.spawn(sys.executable, ["-m", "vllama", "pull", "slow"], env=env, encoding="utf-8",
                              timeout=60, dimensions=(30, 150))
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        screen = [line for line in re.split(r"[\r\n]+", ANSI.sub("", child.before)) if line.strip()]
        assert screen[0] == "pulling manifest" and screen[-1] == "success"
        moving = [int(m.group(1)) for line in screen if (m := BAR.fullmatch(line.strip()))]
        assert any(0 < p < 100 for p in moving)  # redrawn while it downloads, with speed and time left
        done = [line for line in screen if re.fullmatch(r"pulling [0-9a-f]{12}\s+100%\s+\S+\s+2\.0/2\.0 MB.*", line)]
        assert done and screen.index(done[-1]) > screen.index(next(line for line in screen if BAR.fullmatch(line.strip())))
    finally:
        hub.delay, hub.chunk = 0.0, 64 * 1024


def test_pull_error_line_from_the_server(env):
    result = cli("pull", "gated", env=env)
    assert_one_error_line(result, "Hugging Face refused access to acme/Gated")
    assert result.stderr.startswith("pulling manifest\n")


def test_pull_unknown_model(env):
    assert_one_error_line(cli("pull", "no-such-model", env=env), "pull model manifest: file does not exist")


@pytest.mark.engine
def test_run_pulls_a_missing_model_first(engine_env):
    """`run` asks /api/show, pulls on 404, loads the model, and chats."""
    env = engine_env
    child = pexpect.spawn(sys.executable, ["-m", "vllama", "run", "real-tiny"], env=env, encoding="utf-8",
                          timeout=240, dimensions=(30, 150))
    child.expect_exact("pulling manifest")
    child.expect_exact("success")
    child.expect_exact(">>> ")
    child.sendline("/set parameter num_predict 3")
    child.expect_exact(">>> ")
    child.sendline("Hi")
    child.expect_exact(">>> ")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "real-tiny:latest" in vllama("ps", env=env).stdout
    stopped = vllama("stop", "real-tiny", env=env)
    assert stopped.returncode == 0 and stopped.stdout == stopped.stderr == ""
    assert "real-tiny" not in vllama("ps", env=env).stdout
