"""`--serve`: one `python -m vllama serve` on a free loopback port for the length of a run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from vllama.cli.http import tls_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_vllama(engine_argv: list[str], log_path: Path, timeout: float = 600) -> Iterator[dict[str, Any]]:
    """Start the server (engine flags passed through), wait until it answers, stop it on the way out.

    It gets its own process group, so its engine core goes down with it even if it does not stop cleanly.
    """
    port = free_port()
    env = {**os.environ, "VLLAMA_HOST": f"127.0.0.1:{port}"}
    env.pop("OLLAMA_HOST", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    argv = ["-m", "vllama", "serve", *engine_argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, *argv], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            started = time.perf_counter()
            wait_until_up(proc, url + "/", timeout, log_path)
            yield {"url": url, "pid": proc.pid, "command": ["python", *argv], "log": log_path.name,
                   "start_s": round(time.perf_counter() - started, 3)}
        finally:
            stop_process(proc)


def wait_until_up(proc: subprocess.Popen, probe: str, timeout: float, log_path: Path | None, *,
                  what: str = "vllama serve", method: str = "HEAD", every: float = 0.2) -> None:
    """Until `method probe` answers 200; an error naming the log if the server exits or stays silent."""
    see = f"; see {log_path}" if log_path else ""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1, verify=tls_for(probe)) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}{see}")
            try:
                if client.request(method, probe).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer within {timeout:.0f} s{see}")
            time.sleep(every)


def stop_process(proc: subprocess.Popen) -> None:
    """TERM, KILL after 30 s, then KILL whatever is left in its process group (started with start_new_session)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:  # whatever it started and left behind (its group is ours: start_new_session above)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
