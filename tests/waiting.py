"""Waiting in tests for something to become true: poll a condition, fail by name past a deadline
(instead of sleeping a guessed time)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], what: str, seconds: float = 20, every: float = 0.02) -> None:
    """Until `predicate()` is true; an AssertionError saying `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(every)
