"""Loading, keep_alive, eviction and the queue bound, with runners that only count."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from vllama.config import FOREVER
from vllama.engine.base import EngineError
from vllama.engine.scheduler import FOREVER_UNTIL, Scheduler, ServerBusy


class Counting:
    def __init__(self, name, load_seconds=0.0, until: threading.Event | None = None):
        self.name, self.alive, self.shut = name, True, False
        time.sleep(load_seconds)
        if until is not None:  # a load that ends when the test says so
            assert until.wait(30), "the test never let the load finish"

    def shutdown(self):
        self.shut = True


def model(name, digest="d1"):
    return SimpleNamespace(name=name, digest=digest)


def run(coro):
    return asyncio.run(coro)


async def eventually(predicate, what: str, seconds: float = 10) -> None:
    """Poll every 10 ms until `predicate()` holds (instead of sleeping a fixed time first)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def test_one_load_for_concurrent_first_requests():
    loads = []

    def start(m):
        loads.append(m.name)
        return Counting(m.name, load_seconds=0.2)

    async def go():
        s = Scheduler(start)
        entries = await asyncio.gather(*[s.acquire("a", model("a"), 300) for _ in range(5)])
        assert len({id(e) for e in entries}) == 1 and entries[0].active == 5
        for e in entries:
            s.release(e)
        assert s.in_flight == 0
        await s.shutdown()

    run(go())
    assert loads == ["a"]


def test_keep_alive_expiry_unloads_idle_models():
    async def go():
        s = Scheduler(lambda m: Counting(m.name), check_every=0.02)
        e = await s.acquire("a", model("a"), 0.1)
        runner = e.runner
        await asyncio.sleep(0.2)
        assert s.get_loaded("a") is not None  # in use: never unloaded
        s.release(e)
        # was: sleep 0.3 s, then the same check
        await eventually(lambda: s.get_loaded("a") is None and runner.shut, "a was never unloaded once idle")
        assert s.get_loaded("a") is None and runner.shut

    run(go())


def test_keep_alive_zero_and_forever():
    async def go():
        s = Scheduler(lambda m: Counting(m.name), check_every=0.02)
        e = await s.acquire("a", model("a"), 0)
        s.release(e)
        await eventually(lambda: s.get_loaded("a") is None, "keep_alive 0 never unloaded a")  # was: sleep 0.05 s
        assert s.get_loaded("a") is None
        e = await s.acquire("b", model("b"), FOREVER)
        s.release(e)
        await asyncio.sleep(0.1)
        assert s.get_loaded("b").expires_at == FOREVER_UNTIL
        await s.shutdown()

    run(go())


def test_max_loaded_evicts_least_recently_used_idle_model():
    async def go():
        s = Scheduler(lambda m: Counting(m.name), max_loaded=2)
        a = await s.acquire("a", model("a"), 300)
        s.release(a)
        b = await s.acquire("b", model("b"), 300)
        await s.acquire("c", model("c"), 300)  # b is busy, so a goes
        assert {m.key for m in s.loaded()} == {"b", "c"}
        # Both busy: the request for d waits for one to go idle instead of failing (issue #17:
        # wait, don't refuse); b's release makes the room, and b, least recently used, goes.
        d = asyncio.ensure_future(s.acquire("d", model("d"), 300))
        while not s.waiting:
            await asyncio.sleep(0.01)
        assert not d.done()
        s.release(b)
        d_entry = await d
        assert {m.key for m in s.loaded()} == {"c", "d"} and s.waiting == 0
        s.release(d_entry)
        await s.shutdown()

    run(go())


def test_changed_digest_or_dead_engine_reloads():
    async def go():
        s = Scheduler(lambda m: Counting(m.name))
        e1 = await s.acquire("a", model("a", "d1"), 300)
        s.release(e1)
        e2 = await s.acquire("a", model("a", "d2"), 300)
        assert e2.runner is not e1.runner and e1.runner.shut
        s.release(e2)
        e2.runner.alive = False
        e3 = await s.acquire("a", model("a", "d2"), 300)
        assert e3.runner is not e2.runner
        s.release(e3)
        await s.shutdown()

    run(go())


def test_queue_bound_and_failed_loads_release_their_slot():
    def start(m):
        if m.name == "broken":
            raise RuntimeError("no weights")
        return Counting(m.name)

    async def go():
        s = Scheduler(start, max_queue=2)
        entries = [await s.acquire("a", model("a"), 300) for _ in range(2)]
        with pytest.raises(ServerBusy):
            await s.acquire("a", model("a"), 300)
        for e in entries:
            s.release(e)
        with pytest.raises(EngineError, match="no weights"):
            await s.acquire("broken", model("broken"), 300)
        assert s.in_flight == 0
        await s.shutdown()

    run(go())


class FailingShutdown(Counting):
    def shutdown(self):
        super().shutdown()
        raise RuntimeError("engine core would not stop")


def test_shutdown_stops_every_engine_even_when_one_fails_to_stop():
    async def go():
        s = Scheduler(lambda m: (FailingShutdown if m.name == "bad" else Counting)(m.name), check_every=0.02)
        entries = [await s.acquire(name, model(name), 300) for name in ("bad", "a", "b")]
        for e in entries:
            s.release(e)
        await s.shutdown()
        assert all(e.runner.shut for e in entries) and s.loaded() == []
        e = await s.acquire("bad", model("bad"), 0)  # a failed stop leaves nothing stale: it loads afresh
        assert e.runner is not entries[0].runner
        s.release(e)
        while s.get_loaded("bad") is not None:  # keep_alive 0: unloaded (and its failure logged) once idle
            await asyncio.sleep(0.01)
        await s.shutdown()

    run(go())


def test_a_load_whose_caller_went_away_is_stopped_once_it_is_up():
    loading, up, started = threading.Event(), threading.Event(), []

    def start(m):
        loading.set()
        started.append(Counting(m.name, until=up))  # the engine comes up in its thread regardless
        return started[-1]

    async def go():
        s = Scheduler(start)
        waiter = asyncio.ensure_future(s.acquire("a", model("a"), 300))
        while not loading.is_set():
            await asyncio.sleep(0.01)
        waiter.cancel()  # e.g. the client hung up while its model loaded
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert s.in_flight == 0 and s.get_loaded("a") is None
        up.set()  # the load finishes after its caller went away (it took 0.3 s before)
        await s.shutdown()  # waits for the orphan's stop
        assert [r.shut for r in started] == [True]

    run(go())


def test_load_timeout_bounds_the_wait_for_room_and_the_load():
    from vllama.engine.scheduler import LoadTimeout

    started, slow_up = [], threading.Event()

    def start(m):  # slow: up only once its caller has timed out (it took 0.5 s before, 5x the bound)
        started.append(Counting(m.name, until=slow_up if m.name == "slow" else None))
        return started[-1]

    async def go():
        s = Scheduler(start, max_loaded=1, load_timeout=0.1)
        a = await s.acquire("a", model("a"), 300)
        with pytest.raises(LoadTimeout, match="timed out waiting for room to load b"):
            await s.acquire("b", model("b"), 300)  # a never goes idle within the bound
        assert s.waiting == 0 and s.in_flight == 1
        s.release(a)
        with pytest.raises(LoadTimeout, match="timed out waiting for slow to load"):
            await s.acquire("slow", model("slow"), 300)
        assert s.in_flight == 0 and s.get_loaded("slow") is None
        slow_up.set()
        await s.shutdown()  # waits for the slow engine to come up and stops it
        assert [r.shut for r in started] == [True, True]

    run(go())


def test_ollama_load_timeout_reads_go_durations_and_seconds(monkeypatch):
    from vllama.engine.scheduler import LOAD_TIMEOUT, load_timeout

    for value, seconds in [("", LOAD_TIMEOUT), ("10m", 600.0), ("90", 90.0), ("0", float("inf")),
                           ("-1s", float("inf")), ("soon", LOAD_TIMEOUT)]:
        monkeypatch.setenv("OLLAMA_LOAD_TIMEOUT", value)
        assert load_timeout() == seconds, value
