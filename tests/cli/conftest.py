"""Drive the real `vllama` command line as a subprocess (or in a pseudo-terminal) against live servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.live_server import vllama_process

# A tiny model with short, deterministic answers, made with `vllama create` from a Modelfile:
# one-shot `run` has no option flags (as in Ollama), so the model carries its own num_predict.
SHORT = "cli-tiny:short"
SHORT_PREDICT = 6
MODELFILE = f"""# made by the CLI tests
FROM {TINY}
PARAMETER num_predict {SHORT_PREDICT}
PARAMETER temperature 0
PARAMETER seed 1
SYSTEM \"\"\"You answer briefly.\"\"\"
"""


def cli_env(url: str | None, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI process: the server's URL, its own HOME, no automatic server."""
    env = {k: v for k, v in os.environ.items() if k not in ("OLLAMA_HOST", "VLLAMA_HOST")}
    if url is not None:
        env["OLLAMA_HOST"] = env["VLLAMA_HOST"] = url
    env.update({"HOME": str(home), "VLLAMA_NO_AUTOSTART": "1", "COLUMNS": "120", "PYTHONUNBUFFERED": "1",
                "VLLAMA_IMPORT_EARLY": "0"})  # a server the CLI starts itself loads nothing here
    env.update(extra)
    return env


def vllama(*args: str, env: dict[str, str], input: str = "", timeout: float = 180,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m vllama ARGS` with stdin from `input` (never the test runner's own stdin)."""
    return subprocess.run([sys.executable, "-m", "vllama", *args], env=env, input=input, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def assert_one_error_line(result: subprocess.CompletedProcess[str], text: str, code: int = 1) -> None:
    """An expected failure: a non-zero exit and one `Error: ...` line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines and lines[-1].startswith("Error: ") and text in lines[-1], result.stderr
    assert len([line for line in lines if line.startswith("Error")]) == 1


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(server, home) -> dict[str, str]:
    """The CLI environment for the session's live server (the real engine, `tiny` and `smollm2:135m`)."""
    return cli_env(server, home)


@pytest.fixture(scope="session")
def short_model(server, tmp_path_factory) -> Iterator[str]:
    """SHORT, created through `vllama create -f Modelfile` on the session server; removed at the end."""
    folder = tmp_path_factory.mktemp("cli-short")
    (folder / "Modelfile").write_text(MODELFILE)
    env = cli_env(server, folder)
    result = vllama("create", SHORT, env=env, cwd=folder)  # ./Modelfile, as `ollama create` reads it
    assert result.returncode == 0, result.stderr
    yield SHORT
    vllama("rm", SHORT, env=env)


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory) -> Iterator[str]:
    """`vllama serve` on an empty store: model routes and errors, no engine ever starts."""
    root = tmp_path_factory.mktemp("bare")
    with vllama_process(root / "models", env={"HOME": str(root)}, log_path=root / "serve.log") as url:
        yield url
