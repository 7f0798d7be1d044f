"""A dead engine must not lie: the scheduler stops reporting it, shuts it down, and reloads on demand."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from vllama.engine.scheduler import Scheduler


class Runner:
    def __init__(self) -> None:
        self.alive, self.shut = True, False

    def shutdown(self) -> None:
        self.shut = True


def test_a_dead_engine_is_dropped_and_the_next_request_reloads_it():
    started: list[Runner] = []

    def start(model):
        started.append(Runner())
        return started[-1]

    async def go():
        scheduler = Scheduler(start, check_every=60)
        model = SimpleNamespace(name="tiny:latest", digest="d1")
        entry = await scheduler.acquire("tiny:latest", model, 300.0)
        assert [e.key for e in scheduler.loaded()] == ["tiny:latest"]
        started[0].alive = False  # the engine core died while a request still holds the model
        assert scheduler.loaded() == []  # /api/ps and /metrics read this: no dead model, no dead requests
        scheduler.release(entry)  # the failed request lets go of the dead entry
        for _ in range(100):  # the dead engine is shut down off the loop
            if started[0].shut:
                break
            await asyncio.sleep(0.01)
        again = await scheduler.acquire("tiny:latest", model, 300.0)
        scheduler.release(again)
        loaded = scheduler.loaded()
        await scheduler.shutdown()
        return loaded, again

    loaded, again = asyncio.run(go())
    assert len(started) == 2 and started[0].shut
    assert again.runner is started[1] and [e.runner for e in loaded] == [started[1]]


def test_a_keep_alive_zero_release_of_a_dead_entry_leaves_its_replacement_loaded():
    started: list[Runner] = []

    def start(model):
        started.append(Runner())
        return started[-1]

    async def go():
        scheduler = Scheduler(start, check_every=60)
        model = SimpleNamespace(name="tiny:latest", digest="d1")
        old = await scheduler.acquire("tiny:latest", model, 0.0)
        started[0].alive = False
        new = await scheduler.acquire("tiny:latest", model, 300.0)  # reloads beside the dying request
        scheduler.release(old)  # keep_alive 0 on the dead one must not unload the new one
        await asyncio.sleep(0.05)
        loaded = [e.runner for e in scheduler.loaded()]
        scheduler.release(new)
        await scheduler.shutdown()
        return loaded

    assert asyncio.run(go()) == [started[1]]
