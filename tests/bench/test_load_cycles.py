"""bench/load_cycles.py without an engine: the figures' growth and their table (the run itself is
tests/reliability/test_load_cycles.py)."""

import pytest

from bench.load_cycles import Cycle, Figures, as_json, main, markdown


def figures(*rows: tuple[int, int, int]) -> Figures:
    f = Figures("http://127.0.0.1:1", "tiny", 1, {"fds": 10, "threads": 4, "rss": 40 << 20, "children": 0})
    for i, (fds, threads, rss_mib) in enumerate(rows, 1):
        f.cycles.append(Cycle(i, answered=True, unloaded=True, fds=fds, threads=threads, rss=rss_mib << 20,
                              children=1, wall_s=1.0))
    return f


def test_growth_is_last_cycle_minus_first():
    f = figures((18, 11, 600), (18, 11, 601), (20, 12, 606))
    assert (f.growth("fds"), f.growth("threads"), f.growth("rss")) == (2, 1, 6 << 20)
    assert as_json(f)["growth"] == {"fds": 2, "threads": 1, "rss": 6 << 20, "children": 0}
    assert figures((18, 11, 600)).growth("fds") is None  # one cycle: nothing to compare


def test_table_names_every_cycle_and_an_early_stop():
    f = figures((18, 11, 600), (19, 11, 602))
    f.stopped = "cycle 3: still loaded after 300 s"
    text = markdown(f)
    assert "| 1 | yes | yes | 18 | 11 | 600 | 1 | 1.0 |" in text and "| 2 | yes | yes | 19 |" in text
    assert "last cycle minus first: fds 1, threads 0, RSS 2 MiB" in text
    assert text.endswith("stopped early: cycle 3: still loaded after 300 s")


def test_help_describes_the_bounds(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "--cycles" in out and "--cycle-timeout" in out and "--budget" in out
