"""A hung test fails alone and the run goes on; a test that cannot be interrupted ends its worker.

pytest-timeout's thread method ends the whole process. Under xdist's loadgroup scheduling that puts
the hung test back in the queue (LoadScopeScheduling re-queues the crashed worker's unit, crashed
test included), and xdist restarts a crashed worker up to 4 times per worker: measured, one test
that sleeps forever ran 9 times, so at 600 s a single hang would have taken 90 minutes. The signal
method fails just that test, but only once the main thread is back in Python: one blocked in C
(zmq's Context.term() once) never is. So both: SIGALRM at the timeout fails the test with every
thread's stack; if it is still running GRACE seconds later, the thread method's dump and os._exit
end the worker, as before, and the scheduler below runs the test that crashed it no more (xdist then
restarts the worker; pyproject's --max-worker-restart bounds how often).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest
import pytest_timeout
from xdist.scheduler import LoadGroupScheduling

GRACE = 60.0

_cancel = pytest.StashKey[Callable[[], None]]()


class _Backstop:
    """One watchdog thread per process for the thread method's part: a test arms it with a deadline
    and disarms it, and the thread looks once a second. A threading.Timer per test cost a thread's
    start (the main thread waits until it runs) 1,850 times a run, 1.2 s of waiting measured."""

    def __init__(self) -> None:
        self._armed: tuple[float, pytest.Item, object] | None = None
        self._thread: threading.Thread | None = None

    def arm(self, item: pytest.Item, settings, after: float) -> None:
        self._armed = (time.monotonic() + after, item, settings)
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="hang-guard backstop", daemon=True)
            self._thread.start()

    def disarm(self) -> None:
        self._armed = None

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            armed = self._armed
            if armed is not None and time.monotonic() >= armed[0]:
                pytest_timeout.timeout_timer(armed[1], armed[2])  # dumps every stack, ends the process


_backstop = _Backstop()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings) -> bool | None:
    if threading.current_thread() is not threading.main_thread():
        return None  # no SIGALRM off the main thread: pytest-timeout's own method

    def on_alarm(signum, frame) -> None:
        __tracebackhide__ = True
        pytest_timeout.timeout_sigalrm(item, settings)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        _backstop.disarm()

    item.stash[_cancel] = cancel
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    _backstop.arm(item, settings, settings.timeout + GRACE)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    cancel = item.stash.get(_cancel, None)
    if cancel is None:
        return None
    del item.stash[_cancel]
    cancel()
    return True


class CrashedTestsRunOnce(LoadGroupScheduling):
    """xdist's loadgroup scheduling, but the test a worker crashed in is not queued again.

    LoadScopeScheduling.remove_node puts the crashed worker's unfinished units back, the crashed test
    first among them, so a test that kills its worker (a hang past GRACE, a segfault) kills the next
    one too. Here it counts as done (xdist reports it as failed) and only the rest goes back."""

    def remove_node(self, node):
        workload = self.assigned_work[node]
        for unit in workload.values():
            crashed = next((nodeid for nodeid, done in unit.items() if not done), None)
            if crashed is not None:
                unit[crashed] = True
                for scope in [scope for scope, tests in workload.items() if all(tests.values())]:
                    del workload[scope]  # nothing left to run there
                super().remove_node(node)
                return crashed
        return super().remove_node(node)


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadGroupScheduling | None:
    return CrashedTestsRunOnce(config, log) if config.getvalue("dist") == "loadgroup" else None
