"""Which models are loaded: one runner per model, loaded on first use, unloaded when keep_alive expires.

Loading is serialised per model (two first requests share one load); generation never is. A model
is loaded only where it fits: within OLLAMA_MAX_LOADED_MODELS and the memory budget, idle models
unloaded least recently used first to make room. When busy models hold the room, the request waits
(as Ollama's do) until one is released, within the load timeout; only past OLLAMA_MAX_QUEUE
requests in flight is one refused.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from ..config import FOREVER, env, parse_go_duration
from .base import Engine, EngineError
from .memory import Estimate

log = logging.getLogger("vllama.scheduler")

# Far future for "forever", as Ollama shows it in /api/ps.
FOREVER_UNTIL = datetime(2318, 1, 1, tzinfo=timezone.utc)


@dataclass
class Loaded:
    key: str
    model: Any  # the store's LocalModel
    runner: Engine
    keep_alive: float
    reserved: int = 0  # bytes counted against the memory budget (the estimate it was loaded with)
    weights: int = 0  # of those, the weights' (0: not estimated; /api/ps then shows the files' size)
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    identity: str = ""  # what it was loaded from (a digest): another identity at its key reloads it
    context: int = 0  # the context asked for at load (the engine may hold less: never asked again)
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
LOAD_TIMEOUT = 300.0  # Ollama's OLLAMA_LOAD_TIMEOUT default, 5m


def load_timeout() -> float:
    """OLLAMA_LOAD_TIMEOUT in seconds: a Go duration (`5m`) or a number of seconds; 5m when unset or
    unreadable, no bound (inf) when zero or negative, as Ollama reads it."""
    value = env("OLLAMA_LOAD_TIMEOUT")
    if not value:
        return LOAD_TIMEOUT
    try:
        seconds = float(value) if re.fullmatch(r"-?\d+(\.\d*)?", value) else parse_go_duration(value)
    except ValueError:
        return LOAD_TIMEOUT
    return seconds if seconds > 0 else math.inf


def _bound(seconds: float) -> float | None:
    return None if math.isinf(seconds) else seconds


class LoadTimeout(EngineError):
    """A load, or the wait for room to load in, took longer than the load timeout."""


class SchedulerEvents(Protocol):
    """What the scheduler reports as it works (/metrics listens)."""

    def waited(self, seconds: float) -> None:
        """A request waited this long for room to load its model."""

    def loaded(self, key: str, seconds: float) -> None:
        """An engine for `key` came up after this long."""


class _Quiet:
    def waited(self, seconds: float) -> None:
        pass

    def loaded(self, key: str, seconds: float) -> None:
        pass


class Scheduler:
    def __init__(self, start_runner: Callable[..., Engine], max_loaded: int = 3, check_every: float = 1.0,
                 max_queue: int = 512, budget: int | Callable[[], int] | None = None,
                 need: Callable[[Any], Estimate] | None = None, load_timeout: float = LOAD_TIMEOUT):
        self._start_runner = start_runner  # blocking: (LocalModel[, context]) -> Engine
        self.max_loaded = max(1, max_loaded)
        # Bytes every engine may hold together (None: no bound; a callable: measured on the first
        # load, when the device holds none of ours yet), and what one model's engine needs.
        self.budget: int | None = budget if not callable(budget) else None
        self._measure_budget = budget if callable(budget) else None
        self._need = need
        self.load_timeout = load_timeout if load_timeout > 0 else math.inf  # Ollama: 0 or less, no bound
        self.events: SchedulerEvents = _Quiet()
        self.waiting = 0  # requests waiting for room to load their model
        self._loading: dict[str, int] = {}  # key -> bytes reserved by a load in progress
        self._room = asyncio.Condition()  # notified when a model goes idle or is unloaded
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
            self._background(self._stop_dead(entry))

    async def _stop_dead(self, entry: Loaded) -> None:
        try:
            await asyncio.to_thread(entry.runner.shutdown)
        finally:
            await self._notify()

    def get_loaded(self, key: str) -> Loaded | None:
        return self._loaded.get(key)

    async def acquire(self, key: str, model: Any, keep_alive: float, *, identity: str | None = None,
                      context: int = 0) -> Loaded:
        """The loaded model, loading it if needed; the caller must `release` it when done.

        `identity` (default: the model's digest) says what the engine at `key` must have been
        loaded from; `context` (0: the default) is the context the request needs: an idle engine
        with less is loaded again with it, as Ollama reloads a runner for a larger num_ctx."""
        self._ensure_reaper()
        if self.in_flight >= self.max_queue:
            raise ServerBusy(BUSY_MESSAGE)
        self.in_flight += 1
        try:
            return await self._acquire(key, model, keep_alive, identity or model.digest, context)
        except BaseException:
            self.in_flight -= 1
            raise

    async def _acquire(self, key: str, model: Any, keep_alive: float, identity: str, context: int) -> Loaded:
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._loaded.get(key)
            if entry is not None and not entry.runner.alive:
                log.warning("engine for %s died; reloading", key)
                await self._unload(entry)
                entry = None
            # (a busy engine is not reloaded for a context: its requests would die; they run capped)
            small = (context > 0 and entry is not None and not entry.active
                     and context > max(entry.runner.context_length, entry.context))
            if entry is None or entry.identity != identity or small:
                if small:
                    log.info("reloading %s with a context of %d", key, context)
                if entry is not None:
                    await self._unload(entry)
                # in a thread: the estimate asks vLLM's platform, whose import may still be under way
                need = await asyncio.to_thread(self._need, model) if self._need is not None else Estimate(0, 0, 0)
                await self._make_room(key, need.total)
                try:
                    started = time.monotonic()
                    try:
                        runner = await asyncio.wait_for(self._start(model, context), _bound(self.load_timeout))
                    except TimeoutError:
                        raise LoadTimeout(f"timed out waiting for {key} to load "
                                          f"(OLLAMA_LOAD_TIMEOUT {self.load_timeout:g}s)") from None
                    except Exception as err:
                        log.exception("loading %s failed", key)
                        raise EngineError(f"failed to load model: {err}") from err
                    self.events.loaded(key, time.monotonic() - started)
                    entry = Loaded(key, model, runner, keep_alive, reserved=need.total, weights=need.weights,
                                   identity=identity, context=context)
                    self._loaded[key] = entry
                finally:
                    self._loading.pop(key, None)
                    await self._notify()
            entry.keep_alive = keep_alive  # the last caller wins, as in Ollama
            entry.active += 1
            entry.last_used = time.monotonic()
            return entry

    async def _start(self, model: Any, context: int) -> Engine:
        """A new engine, started in a worker thread. If the caller goes away meanwhile (a client that
        hangs up mid-load), the thread still brings the engine up: it is then stopped, not left
        running for the garbage collector to find."""
        # start_runner(model, context) is asked for a context only when a request needs one
        start = asyncio.to_thread(self._start_runner, model, context) if context else asyncio.to_thread(
            self._start_runner, model)
        load = asyncio.ensure_future(start)
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
        if entry.active:
            return
        # (only while it is still the loaded one: a dead engine's replacement may hold the key now)
        if entry.keep_alive == 0 and self._loaded.get(entry.key) is entry:
            self._background(self.unload(entry.key))
        elif self.waiting:
            self._background(self._notify())  # an idle model can make room for a waiting request

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._closing.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._closing.discard)

    async def _notify(self) -> None:
        async with self._room:
            self._room.notify_all()

    async def unload(self, key: str) -> bool:
        entry = self._loaded.get(key)
        if entry is None:
            return False
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._loaded.get(key)
            if entry is None or entry.active:
                return False
            await self._unload(entry)
        await self._notify()  # its room may be what a waiting request needs
        return True

    async def shutdown(self) -> None:
        """Unload every model: each engine is stopped (process, sockets, zmq context) before this returns."""
        from .launch import stop_warm_starts

        stop_warm_starts()  # stopped for good: no next start to prepare for
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            await asyncio.gather(reaper, return_exceptions=True)
        for entry in list(self._loaded.values()):
            await self._unload(entry)
        await asyncio.gather(*self._closing, return_exceptions=True)  # dead or orphaned engines being stopped

    async def _unload(self, entry: Loaded) -> None:
        if self._loaded.get(entry.key) is entry:
            self._loaded.pop(entry.key, None)
        log.info("unloading %s", entry.key)
        try:
            # In a worker thread: stopping an engine blocks for seconds. It is done when this returns,
            # never left to the garbage collector.
            await asyncio.to_thread(entry.runner.shutdown)
        except Exception:  # the entry is gone either way; the next load of this model starts afresh
            log.exception("stopping the engine of %s failed", entry.key)

    def held(self) -> int:
        """Bytes the loaded engines and the loads in progress hold against the budget."""
        return sum(m.reserved for m in self._loaded.values()) + sum(self._loading.values())

    def _fits(self, need: int) -> bool:
        if len(self._loaded) + len(self._loading) >= self.max_loaded:
            return False
        if self.budget is None or not (self._loaded or self._loading):
            return True  # alone, a model gets the device whatever its estimate says
        return self.held() + need <= self.budget

    async def _make_room(self, key: str, need: int) -> None:
        """Reserve room for `key`'s load: unload idle models, least recently used first, until it
        fits; while busy models hold the room, wait for one to go idle (bounded by the load timeout)."""
        if self._measure_budget is not None:
            measure, self._measure_budget = self._measure_budget, None
            self.budget = await asyncio.to_thread(measure)
            log.info("memory budget for engines: %.2f GiB", self.budget / (1 << 30))
        async with self._room:
            waited_from: float | None = None
            try:
                while not self._fits(need):
                    idle = [m for m in self._loaded.values() if m.active == 0]
                    if idle:
                        await self._unload(min(idle, key=lambda m: m.last_used))
                        continue
                    if waited_from is None:
                        waited_from = time.monotonic()
                        self.waiting += 1
                        log.info("%s waits for room: every loaded model is in use", key)
                    remaining = self.load_timeout - (time.monotonic() - waited_from)
                    try:
                        await asyncio.wait_for(self._room.wait(), _bound(max(remaining, 0.0)))
                    except TimeoutError:
                        raise LoadTimeout(f"timed out waiting for room to load {key}: every loaded model "
                                          f"is in use (OLLAMA_LOAD_TIMEOUT {self.load_timeout:g}s)") from None
                self._loading[key] = need
            finally:
                if waited_from is not None:
                    self.waiting -= 1
                    self.events.waited(time.monotonic() - waited_from)

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

