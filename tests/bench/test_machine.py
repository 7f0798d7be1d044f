"""bench.machine: /proc parsing and CPU accounting on synthetic snapshots; the listener lookup on a real socket."""

import os
import socket
import subprocess
import sys
import time

import pytest

from bench.machine import (NOISY_FOREIGN_SHARE, Proc, Snapshot, cpu_facts, cpu_usage, descendants, listening_pid,
                           memory_gib, parse_cpu_line, parse_proc_stat)

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse avx avx2 fma
physical id\t: 0
core id\t\t: 0

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse avx avx2 fma
physical id\t: 0
core id\t\t: 1
"""


def test_cpu_facts_and_memory_from_proc_text():
    facts = cpu_facts(CPUINFO)
    assert facts["cpu_model"] == "AMD EPYC 7B13"
    assert facts["physical_cores"] == 2
    assert facts["avx2"] and not facts["avx512f"]
    assert memory_gib("MemTotal:       24576000 kB\nMemFree: 1 kB\n") == pytest.approx(23.4, abs=0.05)


def test_parse_proc_stat_survives_spaces_and_parentheses_in_the_name():
    line = "4242 (python (x) y) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 3 4 20 0 9 0 123456 1 2 3"
    assert parse_proc_stat(line) == Proc(ppid=17, start=123456, ticks=300, name="python (x) y")
    assert parse_proc_stat("garbage") is None


def test_parse_cpu_line_counts_iowait_as_idle():
    busy, total = parse_cpu_line("cpu  100 10 50 1000 40 5 5 2 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n")
    assert busy == 100 + 10 + 50 + 5 + 5 + 2
    assert total == busy + 1000 + 40


def _snap(busy, total, procs):
    return Snapshot(wall=0.0, busy=busy, total=total, procs=procs)


def test_cpu_usage_splits_the_machine_into_groups_and_foreign():
    before = _snap(0, 0, {1: Proc(0, 0, 0), 10: Proc(1, 5, 100), 11: Proc(10, 6, 50), 20: Proc(1, 7, 0),
                          30: Proc(1, 8, 0), 40: Proc(1, 9, 10)})
    after = _snap(800, 1000, {1: Proc(0, 0, 0), 10: Proc(1, 5, 300),  # server: +200
                              11: Proc(10, 6, 150),  # its engine core: +100
                              12: Proc(10, 900, 50),  # a child born during the window: 50
                              20: Proc(1, 7, 100),  # the bench itself: +100
                              30: Proc(1, 8, 300),  # someone else
                              40: Proc(1, 950, 5)})  # pid reused by a new process: counted whole
    usage = cpu_usage(before, after, {"vllama": [10], "bench": [20]})
    assert usage["groups"] == {"vllama": 0.35, "bench": 0.1}
    assert usage["machine_busy"] == 0.8
    assert usage["foreign"] == pytest.approx(0.35)
    assert usage["noisy"] is (0.35 > NOISY_FOREIGN_SHARE)
    assert usage["processes"]["vllama"] == {"10 ": 0.2, "11 ": 0.1, "12 ": 0.05}


def test_a_process_counts_once_in_the_first_group_that_holds_it():
    procs_a = {1: Proc(0, 0, 0), 2: Proc(1, 1, 0), 3: Proc(2, 2, 0)}
    procs_b = {1: Proc(0, 0, 0), 2: Proc(1, 1, 10), 3: Proc(2, 2, 90)}
    usage = cpu_usage(_snap(0, 0, procs_a), _snap(100, 1000, procs_b), {"ceiling": [3], "bench": [2]})
    assert usage["groups"] == {"ceiling": 0.09, "bench": 0.01}
    assert usage["foreign"] == 0.0 and not usage["noisy"]
    assert descendants([2], procs_b) == {2, 3}
    assert descendants([99], procs_b) == set()


def test_snapshot_of_this_machine_sees_this_process():
    snap = Snapshot.take()
    assert os.getpid() in snap.procs
    assert snap.total >= snap.busy > 0


def test_listening_pid_finds_the_process_behind_a_port():
    child = subprocess.Popen([sys.executable, "-c",
                              "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
                              "print(s.getsockname()[1], flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        port = int(child.stdout.readline())
        deadline = time.monotonic() + 5
        while listening_pid(port) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening_pid(port) == child.pid
    finally:
        child.kill()
        child.wait()
    with socket.socket() as s:  # bound, not listening: nobody
        s.bind(("127.0.0.1", 0))
        assert listening_pid(s.getsockname()[1]) is None
