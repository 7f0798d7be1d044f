"""Load with hang-ups on the session's real server: bench/stress_load.py with CI-sized numbers.

40 streamed clients on `tiny`, three rounds, a quarter hanging up at random moments (before the
first byte or after a random number of chunks). Every other stream ends with `done: true`; after
each round the engine holds nothing (/metrics); the API process's RSS stays within 1.5x of the
first round's. Timings are reported, never asserted. The figures are printed (`pytest -s`) and
written to stress_load.json in the test's temporary folder.
"""

from __future__ import annotations

import json

import pytest

from bench.stress_load import markdown, run
from tests.conftest import TINY

pytestmark = pytest.mark.engine


def test_streams_with_hang_ups_leave_nothing_behind(server, tmp_path, record_property):
    figures = run(server, model=TINY, clients=40, rounds=3, disconnect=0.25, num_predict=24, seed=1)
    (tmp_path / "stress_load.json").write_text(json.dumps(figures, indent=2))
    print("\n" + markdown(figures))
    record_property("stress_load", json.dumps(figures))
    for r in figures["results"]:
        assert r["failed"] == 0, r["failures"]
        assert r["completed"] + r["disconnected"] == 40
        assert r["completed"] >= 30  # the 10 hang-ups at most
        assert r["leaked"] == 0, f"the engine still holds {r['leaked']} requests"
        assert r["engine_held_max"] >= 1
    assert figures["leaked_total"] == 0
    if figures["server_rss_growth"] is not None:  # None where /proc of the server cannot be read
        assert figures["server_rss_growth"] < 1.5, figures["server_rss_growth"]
