"""A GGUF import killed mid-way leaves a partial folder; the next import of that folder removes it."""

from __future__ import annotations

import os
import subprocess
import sys

from vllama.models.gguf import _sweep_stale_partials


def test_partials_of_dead_writers_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "SmolLM2"
    gone = tmp_path / f".SmolLM2.{dead.stdout.strip()}.abc123.partial"
    mine = tmp_path / f".SmolLM2.{os.getpid()}.def456.partial"
    other = tmp_path / f".Other.{dead.stdout.strip()}.ghi789.partial"  # another folder's: not this import's
    for folder in (gone, mine, other):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    _sweep_stale_partials(out)
    assert not gone.exists() and mine.is_dir() and other.is_dir()
