"""The compat suite (python -m compat) against the session's live vllama: every client, zero failures."""

from __future__ import annotations

import pytest
from rich.console import Console

from compat import js_client
from compat.core import FAIL, PASS, Config
from compat.suite import render, run
from tests.conftest import MINILM, SMOL

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def ollama_js() -> None:
    """ollama-js from the committed lock file; without node/npm its cases skip and say why."""
    if js_client.missing_tools() is None and not js_client.installed():
        js_client.install()


def test_every_client_against_a_live_vllama(server, ollama_js):
    report = run(Config(url=server, model=SMOL, embed_model=MINILM, num_predict=8, timeout=300))
    render(report, Console(width=200))  # shown by pytest on failure, or with -s

    failures = [f"{r.client}/{r.case}: {r.detail}" for r in report.failures]
    assert not failures, "\n".join(failures)
    counts = report.counts()
    for client in ("raw", "ollama-python", "ollama-python-async", "openai", "langchain"):
        assert counts[client][PASS] > 0, f"no {client} case passed: {counts[client]}"
    if js_client.missing_tools() is None:
        assert counts["ollama-js"][PASS] > 0, counts["ollama-js"]
    assert all(c[FAIL] == 0 for c in counts.values())
