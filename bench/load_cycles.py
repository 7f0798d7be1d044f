"""Load/unload cycles in one server process: each request loads the model and `keep_alive: 0` unloads it.

    python -m bench.load_cycles                          # starts `vllama serve` on the tiny test model
    python -m bench.load_cycles --cycles 100 --json cycles.json
    python -m bench.load_cycles --url http://127.0.0.1:11434 --model tiny --cycles 20

One cycle: a short non-streamed `/api/generate` with `keep_alive: 0` (the model loads, answers and
is unloaded), then a wait until /api/ps lists nothing and the server has no engine-core child left
(a zombie counts: it was not reaped). Then the server process's open files, threads and resident
memory are read with psutil. Across cycles all three should stay flat: an engine that is not fully
shut down leaves its zmq context, I/O threads and sockets behind, and one left to the garbage
collector can block the server's event loop in `Context.term()`.

Bounded: each cycle must finish within `--cycle-timeout` seconds (a stuck unload ends the run and
is reported), and the whole run within `--budget` seconds. The pytest wrapper
(tests/reliability/test_load_cycles.py) runs 10 cycles and asserts the counts are flat; nothing
here asserts on timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .stress_load import _serve_tiny, engine_pids, server_pid


@dataclass
class Cycle:
    index: int
    answered: bool = False
    unloaded: bool = False  # /api/ps empty and no engine-core child (alive or zombie) left
    fds: int = 0
    threads: int = 0
    rss: int = 0
    children: int = 0  # every child process of the server, the engine core's helpers included
    wall_s: float = 0.0
    error: str = ""


@dataclass
class Figures:
    url: str
    model: str
    pid: int
    before: dict[str, int]  # the server before its first load (vLLM not imported yet)
    cycles: list[Cycle] = field(default_factory=list)
    stopped: str = ""  # why the run ended early, if it did

    def growth(self, name: str) -> int | None:
        """Last cycle minus first: what each later cycle added (the first imports vLLM and torch)."""
        done = [c for c in self.cycles if c.unloaded]
        return getattr(done[-1], name) - getattr(done[0], name) if len(done) >= 2 else None


def _counts(pid: int) -> dict[str, int]:
    import psutil

    proc = psutil.Process(pid)
    with proc.oneshot():
        return {"fds": proc.num_fds(), "threads": proc.num_threads(), "rss": proc.memory_info().rss,
                "children": len(proc.children(recursive=True))}


def _until(check, timeout: float, every: float = 0.1) -> bool:
    """Poll `check()` until it is true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def one_cycle(http: httpx.Client, pid: int, model: str, index: int, timeout: float,
              settled_threads: int | None) -> Cycle:
    cycle = Cycle(index)
    start = time.monotonic()
    body = {"model": model, "prompt": "hi", "stream": False, "keep_alive": 0,
            "options": {"num_predict": 4, "temperature": 0, "seed": 1}}
    try:
        r = http.post("/api/generate", json=body, timeout=timeout)
        cycle.answered = r.status_code == 200 and r.json().get("done") is True
        if not cycle.answered:
            cycle.error = f"HTTP {r.status_code}: {r.text[:200]}"
        left = max(1.0, timeout - (time.monotonic() - start))
        cycle.unloaded = _until(lambda: not http.get("/api/ps").json()["models"] and not engine_pids(pid), left)
        if not cycle.unloaded:
            cycle.error = cycle.error or f"still loaded after {timeout:.0f} s (engine cores: {engine_pids(pid)})"
        if settled_threads is not None:  # vLLM's engine monitor thread notices the stop within a second
            _until(lambda: _counts(pid)["threads"] <= settled_threads, 3.0)
    except httpx.HTTPError as err:
        cycle.error = f"{type(err).__name__}: {err}"
    for name, value in _counts(pid).items():
        setattr(cycle, name, value)
    cycle.wall_s = round(time.monotonic() - start, 2)
    return cycle


def run(url: str, model: str = "tiny", cycles: int = 10, cycle_timeout: float = 300.0, budget: float = 3600.0,
        pid: int | None = None, progress: bool = False) -> Figures:
    pid = pid or server_pid(url)
    if pid is None:
        raise RuntimeError(f"cannot find the process serving {url}")
    figures = Figures(url, model, pid, _counts(pid))
    deadline = time.monotonic() + budget
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(1, cycles + 1):
            if time.monotonic() > deadline:
                figures.stopped = f"budget of {budget:.0f} s spent after {i - 1} cycles"
                break
            settled = figures.cycles[0].threads if figures.cycles else None
            cycle = one_cycle(http, pid, model, i, cycle_timeout, settled)
            figures.cycles.append(cycle)
            if progress:
                print(_row(cycle), file=sys.stderr, flush=True)
            if not cycle.unloaded:
                figures.stopped = f"cycle {i}: {cycle.error}"
                break
    return figures


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f}"


def _row(c: Cycle) -> str:
    return (f"| {c.index} | {'yes' if c.answered else 'NO'} | {'yes' if c.unloaded else 'NO'} | {c.fds} | "
            f"{c.threads} | {_mib(c.rss)} | {c.children} | {c.wall_s:.1f} |")


def markdown(figures: Figures) -> str:
    b = figures.before
    lines = [f"server before the first load: {b['fds']} fds, {b['threads']} threads, {_mib(b['rss'])} MiB RSS, "
             f"{b['children']} children", "",
             "| cycle | answered | unloaded | open fds | threads | RSS MiB | children | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [_row(c) for c in figures.cycles]
    rss = figures.growth("rss")
    lines += ["", f"last cycle minus first: fds {figures.growth('fds')}, threads {figures.growth('threads')}, "
                  f"RSS {None if rss is None else _mib(rss)} MiB"]
    if figures.stopped:
        lines.append(f"stopped early: {figures.stopped}")
    return "\n".join(lines)


def as_json(figures: Figures) -> dict[str, Any]:
    return {**asdict(figures), "growth": {k: figures.growth(k) for k in ("fds", "threads", "rss", "children")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load_cycles", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running vllama whose process this machine can see (default: start one on "
                                 "the tiny test model)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--cycles", type=int, default=100)
    p.add_argument("--cycle-timeout", type=float, default=300.0, help="seconds one load, answer and unload may take")
    p.add_argument("--budget", type=float, default=7200.0, help="seconds the whole run may take")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    with ExitStack() as stack:
        url = args.url or _serve_tiny(stack)
        figures = run(url, args.model, args.cycles, args.cycle_timeout, args.budget, progress=True)
    print(markdown(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(as_json(figures), indent=2) + "\n")
    return 0 if not figures.stopped and all(c.answered for c in figures.cycles) else 1


if __name__ == "__main__":
    sys.exit(main())
