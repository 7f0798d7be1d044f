"""Real servers on loopback sockets for tests: an app in a uvicorn thread, or `vllama serve` as a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn


# One client for the whole run, for absolute URLs on any test server, with httpx's defaults (as
# `httpx.get` has). A client per call builds an SSL context every time: about 45 % of the CPU of the
# socket tests, measured on 2 cores. No keep-alive: each request gets a fresh connection, as with
# `httpx.get`, so a test server that reuses an earlier one's port never meets a stale connection.
HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@contextmanager
def app_in_thread(app) -> Iterator[str]:
    """Serve a Starlette app on 127.0.0.1 in a thread (httpx's ASGITransport buffers streams)."""
    port = free_port()
    server = _ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


@contextmanager
def vllama_process(models_dir: Path, *args: str, env: dict[str, str] | None = None,
                   log_path: Path | None = None, timeout: float = 300) -> Iterator[str]:
    """`python -m vllama serve` on a free port with its own model store; yields the base URL."""
    with vllama_server(models_dir, *args, env=env, log_path=log_path, timeout=timeout) as served:
        yield served.url


@contextmanager
def vllama_server(models_dir: Path, *args: str, env: dict[str, str] | None = None,
                  log_path: Path | None = None, timeout: float = 300) -> Iterator[Served]:
    """As `vllama_process`, with the server's process id (for psutil)."""
    port = free_port()
    # Most servers here never load a model: vLLM's early import (seconds of CPU) and the re-exec that
    # preloads tcmalloc and Intel OpenMP for the engine are for those that do (ENGINE_ENV turns them on).
    full_env = {**os.environ, "VLLAMA_HOST": f"127.0.0.1:{port}", "VLLAMA_MODELS": str(models_dir),
                "HF_HUB_OFFLINE": "1", "VLLAMA_IMPORT_EARLY": "0", "VLLAMA_CPU_PRELOAD": "0", **(env or {})}
    full_env.pop("OLLAMA_HOST", None)
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "vllama", "serve", *args], env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllama serve exited with {proc.returncode}; log: {log_path}")
            try:
                if httpx.head(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("vllama serve did not answer")
            time.sleep(0.05)
        yield Served(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()
