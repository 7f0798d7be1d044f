"""`--profile`: py-spy samples a target's process during each level; `python -m bench.profile FILE` sums them up.

py-spy's raw format is one collapsed stack per line, `frame;frame;...;leaf count`, each frame
`function (file:line)`. Profiled levels are marked in the JSON: the sampler takes CPU from the target.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def py_spy() -> str | None:
    return shutil.which("py-spy") or (str(p) if (p := Path(sys.executable).with_name("py-spy")).exists() else None)


@contextmanager
def sampling(pid: int | None, path: Path, rate: int = 100) -> Iterator[bool]:
    """py-spy on `pid` while the block runs (non-blocking: the target is not paused to be sampled)."""
    exe = py_spy()
    if not pid or not exe:
        yield False
        return
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
                             "--format", "raw", "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield True
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def frame_label(frame: str) -> str:
    """`function (path/to/module.py:12)` -> `module.py:function`."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{Path(m['file']).name}:{m['func']}"


def parse(lines: list[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if m:
            stacks.append(([frame_label(f) for f in m["stack"].split(";")], int(m["count"])))
    return stacks


def summarize(stacks: list[tuple[list[str], int]], top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive shares of all samples, by `module.py:function`, and by thread (first frame)."""
    total = sum(c for _, c in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for label in set(frames):
            inclusive[label] += count
        threads[frames[0]] += count
    share = lambda counter: [(k, v / total) for k, v in counter.most_common(top)]  # noqa: E731
    return {"samples": [("total", total)], "self": share(own), "inclusive": share(inclusive), "threads": share(threads)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    lines = [line for f in args.files for line in f.read_text(encoding="utf-8").splitlines()]
    out = summarize(parse(lines), args.top)
    print(f"{out['samples'][0][1]} samples")
    for part in ("self", "inclusive", "threads"):
        print(f"\n{part}:")
        for label, frac in out[part]:
            print(f"  {100 * frac:5.1f} %  {label}")


if __name__ == "__main__":
    main()
