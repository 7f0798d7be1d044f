"""Real servers on loopback sockets for tests: an app in a uvicorn thread, or `vllama serve` as a process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from bench.serve import free_port, wait_until_up
from tests.waiting import wait_for


# One client for the whole run, for absolute URLs on any test server, with httpx's defaults (as
# `httpx.get` has). A client per call builds an SSL context every time: about 45 % of the CPU of the
# socket tests, measured on 2 cores. No keep-alive: each request gets a fresh connection, as with
# `httpx.get`, so a test server that reuses an earlier one's port never meets a stale connection.
HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


class _ThreadServer(uvicorn.Server):
    """uvicorn in a thread, quick to stop. uvicorn looks at `should_exit` every 0.1 s, and its
    shutdown pauses 0.1 s for open connections to wind down: about 0.19 s a stop, and test
    servers stop hundreds of times a run. `stop()` wakes the main loop at once; with no connection
    open the pause is skipped (with one, uvicorn's own shutdown runs as it is)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def install_signal_handlers(self) -> None:  # not the main thread
        pass

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.serving = threading.Event()  # set once it listens: app_in_thread waits on it, not in a poll

    async def main_loop(self) -> None:  # uvicorn's, with a wait that stop() can cut short
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self.serving.set()  # startup is done: the socket listens
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    def stop(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is already closed
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        # uvicorn's shutdown, less the pause for connections: there are none
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


@contextmanager
def app_in_thread(app) -> Iterator[str]:
    """Serve a Starlette app on 127.0.0.1 in a thread (httpx's ASGITransport buffers streams)."""
    port = free_port()
    server = _ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.serving.wait(0.5):
        if not thread.is_alive():
            raise RuntimeError(f"the test server on port {port} did not start (its log says why)")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)


def abandon_request(url: str, method: str, path: str, body: bytes, until, headers: dict[str, str] | None = None,
                    timeout: float = 10) -> None:
    """Send a request on a raw socket, wait until `until()` is true (e.g. the engine has it), then
    close the connection without reading the answer: a client that gives up before it is ready,
    at a known point rather than after a fixed read timeout."""
    host, port = url.removeprefix("http://").split(":")
    head = {"Host": f"{host}:{port}", "Content-Type": "application/json", "Content-Length": str(len(body)),
            **(headers or {})}
    request = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request.encode() + body)
        wait_for(until, f"{method} {path}: the condition never held", timeout, every=0.005)


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
        wait_until_up(proc, url + "/", timeout, log_path, every=0.05)
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
