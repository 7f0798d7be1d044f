"""Which models are loaded: one runner per model, loaded on first use, unloaded when keep_alive expires.

Loading is serialised per model (two first requests share one load); generation never is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..config import FOREVER
from .base import Engine, EngineError

log = logging.getLogger("vllama.scheduler")

# Far future for "forever", as Ollama shows it in /api/ps.
FOREVER_UNTIL = datetime(2318, 1, 1, tzinfo=timezone.utc)


@dataclass
class Loaded:
    key: str
    model: Any  # the store's LocalModel
    runner: Engine
    keep_alive: float
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    loaded_at: float = field(default_factory=time.monotonic)

    @property
    def expires_at(self) -> datetime:
        if self.keep_alive == FOREVER:
            return FOREVER_UNTIL
        idle_from = time.time() - (time.monotonic() - self.last_used) if not self.active else time.time()
        return datetime.fromtimestamp(idle_from + self.keep_alive, timezone.utc)

    def expired(self, now: float) -> bool:
        return self.active == 0 and self.keep_alive != FOREVER and now - self.last_used >= self.keep_alive


class ServerBusy(EngineError):
    """More requests in flight than OLLAMA_MAX_QUEUE allows."""


BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"


class Scheduler:
    def __init__(self, start_runner: Callable[[Any], Engine], max_loaded: int = 3, check_every: float = 1.0,
                 max_queue: int = 512):
        self._start_runner = start_runner  # blocking: LocalModel -> Engine
        self.max_loaded = max(1, max_loaded)
        # Ollama's bound on waiting requests. vLLM admits everything into its own queue, so the bound
        # here is on requests in flight (loading, queued in the engine, or generating).
        self.max_queue = max(1, max_queue)
        self.in_flight = 0
        self._loaded: dict[str, Loaded] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self._check_every = check_every

    def loaded(self) -> list[Loaded]:
        """The live models. An engine whose core died is dropped here, so /api/ps and /metrics never
        report a dead model or its requests as live; the next request for it loads it again."""
        self._drop_dead()
        return sorted(self._loaded.values(), key=lambda m: m.expires_at, reverse=True)

    def _drop_dead(self) -> None:
        for entry in [e for e in self._loaded.values() if not e.runner.alive]:
            log.warning("engine for %s died; dropped (the next request reloads it)", entry.key)
            self._loaded.pop(entry.key, None)
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(entry.runner.shutdown))
            self._closing.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._closing.discard)

    def get_loaded(self, key: str) -> Loaded | None:
        return self._loaded.get(key)

    async def acquire(self, key: str, model: Any, keep_alive: float) -> Loaded:
        """The loaded model, loading it if needed; the caller must `release` it when done."""
        self._ensure_reaper()
        if self.in_flight >= self.max_queue:
            raise ServerBusy(BUSY_MESSAGE)
        self.in_flight += 1
        try:
            return await self._acquire(key, model, keep_alive)
        except BaseException:
            self.in_flight -= 1
            raise

    async def _acquire(self, key: str, model: Any, keep_alive: float) -> Loaded:
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._loaded.get(key)
            if entry is not None and not entry.runner.alive:
                log.warning("engine for %s died; reloading", key)
                await self._unload(entry)
                entry = None
            if entry is None or entry.model.digest != model.digest:
                if entry is not None:
                    await self._unload(entry)
                await self._make_room()
                try:
                    runner = await self._start(model)
                except Exception as err:
                    log.exception("loading %s failed", key)
                    raise EngineError(f"failed to load model: {err}") from err
                entry = Loaded(key, model, runner, keep_alive)
                self._loaded[key] = entry
            entry.keep_alive = keep_alive  # the last caller wins, as in Ollama
            entry.active += 1
            entry.last_used = time.monotonic()
            return entry

    async def _start(self, model: Any) -> Engine:
        """A new engine, started in a worker thread. If the caller goes away meanwhile (a client that
        hangs up mid-load), the thread still brings the engine up: it is then stopped, not left
        running for the garbage collector to find."""
        load = asyncio.ensure_future(asyncio.to_thread(self._start_runner, model))
        try:
            return await asyncio.shield(load)
        except asyncio.CancelledError:
            task = asyncio.get_running_loop().create_task(self._stop_when_up(load))
            self._closing.add(task)  # `shutdown` waits for it
            task.add_done_callback(self._closing.discard)
            raise

    @staticmethod
    async def _stop_when_up(load: asyncio.Future[Engine]) -> None:
        try:
            runner = await load
        except Exception:  # it never came up: nothing to stop
            return
        await asyncio.to_thread(runner.shutdown)

    def release(self, entry: Loaded) -> None:
        self.in_flight -= 1
        entry.active -= 1
        entry.last_used = time.monotonic()
        # (only while it is still the loaded one: a dead engine's replacement may hold the key now)
        if entry.active == 0 and entry.keep_alive == 0 and self._loaded.get(entry.key) is entry:
            asyncio.get_running_loop().create_task(self.unload(entry.key))

    async def unload(self, key: str) -> bool:
        entry = self._loaded.get(key)
        if entry is None:
            return False
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._loaded.get(key)
            if entry is None or entry.active:
                return False
            await self._unload(entry)
            return True

    async def shutdown(self) -> None:
        """Unload every model: each engine is stopped (process, sockets, zmq context) before this returns."""
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            await asyncio.gather(reaper, return_exceptions=True)
        for entry in list(self._loaded.values()):
            await self._unload(entry)
        await asyncio.gather(*self._closing, return_exceptions=True)  # dead or orphaned engines being stopped

    async def _unload(self, entry: Loaded) -> None:
        self._loaded.pop(entry.key, None)
        log.info("unloading %s", entry.key)
        try:
            # In a worker thread: stopping an engine blocks for seconds. It is done when this returns,
            # never left to the garbage collector.
            await asyncio.to_thread(entry.runner.shutdown)
        except Exception:  # the entry is gone either way; the next load of this model starts afresh
            log.exception("stopping the engine of %s failed", entry.key)

    async def _make_room(self) -> None:
        while len(self._loaded) >= self.max_loaded:
            idle = [m for m in self._loaded.values() if m.active == 0]
            if not idle:
                raise ServerBusy("server busy: every loaded model is in use; raise OLLAMA_MAX_LOADED_MODELS")
            await self._unload(min(idle, key=lambda m: m.last_used))

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            now = time.monotonic()
            for entry in list(self._loaded.values()):
                if entry.expired(now):
                    await self.unload(entry.key)

