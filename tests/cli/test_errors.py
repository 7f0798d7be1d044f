"""Expected failures end in one `Error:` line and a non-zero exit; a missing local server is started.

The CLI runs in this process (`cli`) except where a real `python -m vllama` process is the point:
one unreachable-server case (the entry point's exit status and its one error line), and the
autostart, whose background server must outlive the command that started it."""

from __future__ import annotations

import os
import signal
import time

import httpx
import psutil
import pytest

from tests.cli.conftest import assert_one_error_line, cli, cli_env, vllama
from tests.live_server import free_port
from vllama import OLLAMA_VERSION


@pytest.fixture
def down(home) -> dict[str, str]:
    """Nothing listens on this port, and the CLI may not start a server (VLLAMA_NO_AUTOSTART=1)."""
    return cli_env(f"http://127.0.0.1:{free_port()}", home)


@pytest.mark.parametrize("args", [["list"], ["ps"], ["show", "tiny"], ["run", "tiny", "hi"], ["pull", "tiny"],
                                  ["rm", "tiny"], ["cp", "a", "b"], ["stop", "tiny"], ["create", "x", "--from", "tiny"]])
def test_server_down(down, args):
    run = vllama if args == ["list"] else cli  # `list` through the real entry point
    result = run(*args, env=down)
    assert_one_error_line(result, "could not connect to a vllama server at http://127.0.0.1:")
    assert "vllama serve" in result.stderr and result.stdout == ""


def test_version_without_server_still_prints_the_client_version(down):
    result = cli("--version", env=down)
    assert result.returncode == 0
    assert result.stdout == "vllama version is 0.1.0\n"
    assert "Warning: could not connect to a running vllama server" in result.stderr


def test_version_with_server(bare_server, home):
    result = cli("-v", env=cli_env(bare_server, home))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["vllama version is 0.1.0",
                                          f"server at {bare_server} speaks the Ollama API of version {OLLAMA_VERSION}"]


@pytest.mark.parametrize("args, text", [
    (["run"], "the following arguments are required: MODEL"),
    (["list", "--bogus"], "unrecognized arguments: --bogus"),
    (["run", "tiny", "hi", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["show", "tiny", "--license", "--system"], "not allowed with argument"),
    (["run", "tiny", "--format", "yaml"], "invalid choice: 'yaml'"),
])
def test_bad_arguments(down, args, text):
    assert_one_error_line(cli(*args, env=down), text, code=2)


def test_bad_keepalive(bare_server, home):
    result = cli("run", "tiny", "hi", "--keepalive", "5 minutes", env=cli_env(bare_server, home))
    assert_one_error_line(result, 'invalid --keepalive: time: invalid duration "5 minutes"')


@pytest.mark.parametrize("args, text", [
    (["show", "nope"], "model 'nope' not found"),
    (["run", "nope", "hi"], "pull model manifest: file does not exist"),  # not here: pulled first, as Ollama does
    (["pull", "nope"], "pull model manifest: file does not exist"),
    (["rm", "nope"], "model 'nope' not found"),
    (["cp", "nope", "other"], 'model "nope" not found'),
    (["stop", "nope"], 'couldn\'t find model "nope" to stop'),
    (["create", "x", "--from", "nope"], "pull model manifest: file does not exist"),
    (["show", "bad name!"], "invalid model name"),
])
def test_unknown_model(bare_server, home, args, text):
    assert_one_error_line(cli(*args, env=cli_env(bare_server, home)), text)


def test_run_unknown_model_prints_the_pull_it_tried(bare_server, home):
    result = cli("run", "nope", "hi", env=cli_env(bare_server, home))
    assert result.stderr.splitlines()[0] == "pulling manifest"


def test_list_and_ps_on_an_empty_server(bare_server, home):
    env = cli_env(bare_server, home)
    assert cli("list", env=env).stdout == "NAME    ID    SIZE    MODIFIED\n"
    assert cli("ps", env=env).stdout == "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL\n"


def test_autostart_starts_a_background_server(home, tmp_path):
    """With no server on a local address, a command starts `vllama serve` detached and says so."""
    port = free_port()
    # it loads nothing: no preloaded CPU libraries (the server's re-exec at its start), as no early vLLM import
    env = cli_env(f"127.0.0.1:{port}", home, VLLAMA_MODELS=str(tmp_path / "models"), HF_HUB_OFFLINE="1",
                  VLLAMA_CPU_PRELOAD="0")
    del env["VLLAMA_NO_AUTOSTART"]
    pid = None
    try:
        result = vllama("list", env=env, timeout=150)
        pid_file = home / ".vllama" / "serve.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        assert result.returncode == 0, result.stderr
        assert result.stdout == "NAME    ID    SIZE    MODIFIED\n"
        assert f"Started a vllama server in the background on http://127.0.0.1:{port}" in result.stderr
        assert (home / ".vllama" / "serve.log").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Ollama is running"  # it outlived the CLI
        again = cli("list", env=env)  # in this process: the check is what the server answers
        assert again.returncode == 0 and again.stderr == ""  # found running: nothing started this time
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)


def _wait_gone(pid: int, timeout: float = 30) -> None:
    """Until the process has exited: gone, or a zombie (not our child, so not ours to reap; PID 1
    may take a second or more to)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
