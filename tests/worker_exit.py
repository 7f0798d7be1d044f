"""An xdist worker ends as soon as its session is over, without Python's interpreter teardown.

A worker has sent its last report (xdist's "workerfinished", at session finish) before
pytest_unconfigure. What Python does after that (clearing every module of a process that imported
httpx, three SDKs, hypothesis and, on one worker, torch and vLLM, then a last collection) took
3-4 s on this 2-core machine, and xdist's controller waits for it: measured, the last test ended
7.6 s before the run did; with this, 2.5 s. atexit handlers still run, so whatever a test or the
code under test registered to stop (servers, child processes) is stopped as before.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_unconfigure(config: pytest.Config) -> Iterator[None]:
    yield  # every plugin's unconfigure first (pytest's own last check for unraisable exceptions too)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller and `-n 0` end as usual
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
