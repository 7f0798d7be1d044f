"""How engines start: forked on the CPU from a process that allowed it (the server), else spawned."""

from __future__ import annotations

import pytest

from vllama.engine import launch


@pytest.fixture
def fork_allowed(monkeypatch):
    monkeypatch.setattr(launch, "_fork_allowed", True)


def test_spawn_unless_the_process_allowed_fork(monkeypatch):
    monkeypatch.delenv("VLLAMA_ENGINE_START", raising=False)
    monkeypatch.setattr(launch, "_fork_allowed", False)
    assert launch.start_method() == "spawn"  # a test process may have run kernels


def test_fork_in_the_server_and_spawn_on_request(monkeypatch, fork_allowed):
    monkeypatch.delenv("VLLAMA_ENGINE_START", raising=False)
    assert launch.start_method() == "fork"
    monkeypatch.setenv("VLLAMA_ENGINE_START", "spawn")
    assert launch.start_method() == "spawn"
    monkeypatch.setenv("VLLAMA_ENGINE_START", "fork")
    assert launch.start_method() == "fork"
