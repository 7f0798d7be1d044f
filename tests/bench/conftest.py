"""Fixtures of the bench tests against the stand-in `ollama` program."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.ollama_standin import launcher


@pytest.fixture
def gguf(tmp_path) -> Path:
    """A file the stand-in takes as the GGUF `ollama create` registers (it never reads the weights)."""
    path = tmp_path / "weights.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> str:
    """The stand-in `ollama` program, started as fast as a real one starts (ollama_standin.launcher)."""
    return str(launcher(tmp_path_factory.mktemp("standin")))
