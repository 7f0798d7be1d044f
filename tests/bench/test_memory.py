"""bench.memory: the RSS of a process tree, and peaks per level and per run."""

import os
import subprocess
import sys
import time

from bench.memory import PeakMemory, tree_rss


def test_a_tree_counts_its_children_and_a_dead_root_counts_nothing():
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(64 << 20); time.sleep(60)"])
    try:
        import psutil

        for _ in range(500):  # until the child holds its 64 MiB (a wait, not a timing)
            if psutil.Process(child.pid).memory_info().rss >= 60 << 20:
                break
            time.sleep(0.01)
        alone = tree_rss([], [os.getpid()])
        assert tree_rss([os.getpid()]) >= alone + (60 << 20)  # the child is in this process's tree
    finally:
        child.kill()
        child.wait()
    assert tree_rss([child.pid]) is None


def test_peaks_per_level_and_per_run():
    memory = PeakMemory(interval_s=0.01)
    memory.track("me", lambda: ([os.getpid()], []))
    memory.track("gone", lambda: ([], []))
    with memory:
        level = memory.level_peaks()
    assert level["me"] > 0 and "gone" not in level
    assert memory.level_peaks()["me"] > 0  # sampled again for the next level
    assert memory.peaks()["me"] >= level["me"]
