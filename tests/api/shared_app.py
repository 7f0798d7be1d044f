"""One app on one loopback socket for a whole test module, reset between tests.

Starting and stopping uvicorn for every test cost most of this folder's time. Tests that only
talk HTTP to the app share one; each still gets a runner of its own and a scheduler with nothing
loaded (the previous test's models are unloaded in between), which is all the per-test app gave.
Tests that need an app of their own (other settings, environment, store) still build one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.live_server import app_in_thread
from vllama.api.app import build_app
from vllama.engine.scheduler import Scheduler


class SharedApp:
    def __init__(self, store: Any, start: Callable[[Any], Any] | None = None):
        self.current: Any = None  # the runner the next load returns
        self.start = start or (lambda model: self.current)
        self.scheduler = Scheduler(lambda model: self.start(model), max_loaded=2, check_every=0.05)
        self.app = build_app(store, self.scheduler, keep_alive=300.0)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.loop is None:  # the lifespan startup comes first: the server's loop
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def reset(self, runner: Any = None) -> None:
        """Unload everything (as a fresh app would have nothing loaded); the next load gets `runner`."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.scheduler.shutdown(), self.loop).result(timeout=30)
        self.current = runner


@contextmanager
def shared_app(store: Any, start: Callable[[Any], Any] | None = None) -> Iterator[SharedApp]:
    shared = SharedApp(store, start)
    with app_in_thread(shared) as url:
        shared.url = url
        yield shared
