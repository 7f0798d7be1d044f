"""Drive the `vllama` command line against live servers: in this process (`cli`), or as the real
`python -m vllama` subprocess (`vllama`) where a test needs a process of its own."""

from __future__ import annotations

import io
import locale
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.cli.servers import serve_in_thread

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


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ is `env` inside (only the keys that differ are touched), as it was after."""
    saved = dict(os.environ)

    def become(target: dict[str, str]) -> None:
        for key in [k for k in os.environ if k not in target]:
            del os.environ[key]
        for key, value in target.items():
            if os.environ.get(key) != value:
                os.environ[key] = value

    become(env)
    try:
        yield
    finally:
        become(saved)


def _pipe(errors: str) -> io.TextIOWrapper:
    """What a child's stdout or stderr is on a pipe: not a terminal, the locale's encoding."""
    return io.TextIOWrapper(io.BytesIO(), encoding=locale.getpreferredencoding(False), errors=errors,
                            write_through=True)


def _read(stream: io.TextIOWrapper) -> str:
    """The text as `subprocess.run(text=True)` gives it: decoded, with universal newlines."""
    stream.flush()
    data = stream.buffer.getvalue()  # type: ignore[attr-defined]
    return data.decode(stream.encoding, stream.errors).replace("\r\n", "\n").replace("\r", "\n")


def cli(*args: str, env: dict[str, str], input: str = "",
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`vllama ARGS` as `vllama()` runs it, without a new Python: `vllama.cli.main(ARGS)` in this
    process with `env` as os.environ, `cwd` as the working directory, `input` as stdin, stdout and
    stderr captured from pipes that are not terminals; the exit status is main's SystemExit, or 1
    with the traceback on stderr, as the interpreter does, for any other exception."""
    from vllama.cli import main

    stdout, stderr = _pipe("strict"), _pipe("backslashreplace")
    streams = sys.stdin, sys.stdout, sys.stderr
    here = os.getcwd()
    with _environment(env):
        try:
            if cwd is not None:
                os.chdir(cwd)
            sys.stdin, sys.stdout, sys.stderr = io.StringIO(input), stdout, stderr
            try:
                main(list(args))
                code = 0
            except SystemExit as done:
                if done.code is None or isinstance(done.code, int):
                    code = done.code or 0
                else:
                    print(done.code, file=stderr)
                    code = 1
            except Exception:
                traceback.print_exc(file=stderr)
                code = 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = streams
            os.chdir(here)
    return subprocess.CompletedProcess(["vllama", *args], code, _read(stdout), _read(stderr))


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


@contextmanager
def short_model_on(url: str, folder: Path, run=vllama) -> Iterator[str]:
    """SHORT, created through `vllama create` with ./Modelfile in `folder` (as `ollama create` reads
    it) on the server at `url`, by `run` (`vllama` or `cli`); removed at the end."""
    (folder / "Modelfile").write_text(MODELFILE)
    env = cli_env(url, folder)
    result = run("create", SHORT, env=env, cwd=folder)
    assert result.returncode == 0, result.stderr
    yield SHORT
    run("rm", SHORT, env=env)


@pytest.fixture(scope="session")
def short_model(server, tmp_path_factory) -> Iterator[str]:
    """SHORT on the session server, made by the real `python -m vllama create` from ./Modelfile."""
    with short_model_on(server, tmp_path_factory.mktemp("cli-short")) as name:
        yield name


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory) -> Iterator[str]:
    """`vllama serve`'s app (in a thread here) on an empty store: model routes and errors, no
    engine ever starts."""
    with serve_in_thread(tmp_path_factory.mktemp("bare") / "models") as url:
        yield url
