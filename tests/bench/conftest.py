"""Fixtures of the bench tests against the stand-in `ollama` program."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def gguf(tmp_path) -> Path:
    """A file the stand-in takes as the GGUF `ollama create` registers (it never reads the weights)."""
    path = tmp_path / "weights.gguf"
    path.write_bytes(b"GGUF")
    return path
