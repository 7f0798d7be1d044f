"""Each server's peak memory: the RSS of its process tree, sampled in a thread for the whole run.

A target names its processes as (tree roots, single processes): a served vllama or an Ollama is
the tree under its server process (Ollama's runner, vLLM's engine core); the in-process ceiling is
the engine core's tree plus this process alone (its front end runs here, beside the bench's own
client, which the figure then includes). RSS counts a page shared by two processes twice, so a
tree's sum is an upper bound. `level_peaks()` gives the peaks since the last call (one level's),
`peaks()` those of the whole run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psutil

Roots = Callable[[], tuple[list[int], list[int]]]


def tree_rss(roots: list[int], single: list[int] | None = None) -> int | None:
    """Bytes resident in the trees under `roots` and in the `single` processes; None if none is alive."""
    pids: set[int] = set(single or [])
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            pids.add(pid)
            pids.update(child.pid for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    total, alive = 0, False
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
            alive = True
        except psutil.Error:
            continue
    return total if alive else None


class PeakMemory:
    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.targets: dict[str, Roots] = {}
        self._run: dict[str, int] = {}
        self._level: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, name: str, roots: Roots) -> None:
        with self._lock:
            self.targets[name] = roots
        self.sample()

    def sample(self) -> None:
        with self._lock:
            targets = dict(self.targets)
        for name, roots in targets.items():
            try:
                rss = tree_rss(*roots())
            except Exception:  # a target mid-restart: next time
                continue
            if rss is None:
                continue
            with self._lock:
                self._run[name] = max(self._run.get(name, 0), rss)
                self._level[name] = max(self._level.get(name, 0), rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def level_peaks(self) -> dict[str, int]:
        """Peaks since the previous call."""
        self.sample()
        with self._lock:
            out, self._level = self._level, {}
        return out

    def peaks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._run)
