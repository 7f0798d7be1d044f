"""Ten load/unload cycles of the tiny model in one `vllama serve` (keep_alive 0 after each request):
bench/load_cycles.py with a CI-sized count. No cycle hangs, no engine-core process is left behind,
and the server's open files, threads and memory stay flat after the first cycle (which imports vLLM
and torch). Counts are asserted, never timings; the figures are printed (`pytest -s`)."""

from __future__ import annotations

import json

import pytest

from bench.load_cycles import as_json, markdown, run
from tests.conftest import ENGINE_ENV, TINY
from tests.live_server import vllama_server

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]  # ten engine starts and stops
CYCLES = 10


@pytest.fixture(scope="module")
def served(tiny_folder, tmp_path_factory):
    """A server of its own: nothing else loads or unloads while it is measured."""
    from vllama.models.store import ModelStore

    root = tmp_path_factory.mktemp("cycles")
    ModelStore(root / "models").create_from_folder(TINY, tiny_folder)
    with vllama_server(root / "models", env=ENGINE_ENV, log_path=root / "serve.log") as server:
        yield server


def test_load_unload_cycles_leave_nothing_behind(served, tmp_path, record_property):
    figures = run(served.url, TINY, cycles=CYCLES, cycle_timeout=300, pid=served.pid)
    (tmp_path / "load_cycles.json").write_text(json.dumps(as_json(figures), indent=2))
    print("\n" + markdown(figures))
    record_property("load_cycles", json.dumps(as_json(figures)))
    assert not figures.stopped, figures.stopped
    assert len(figures.cycles) == CYCLES
    assert all(c.answered and c.unloaded for c in figures.cycles), [c.error for c in figures.cycles]
    first, last = figures.cycles[0], figures.cycles[-1]
    assert last.children <= first.children  # every engine core reaped (multiprocessing's tracker stays)
    assert last.fds - first.fds <= 4, [c.fds for c in figures.cycles]
    assert last.threads - first.threads <= 2, [c.threads for c in figures.cycles]
    assert last.rss - first.rss <= 64 << 20, [c.rss for c in figures.cycles]  # measured: 7 MiB over 9 cycles
