"""Fixtures for model-manager tests: an isolated catalogue, a store, a local Hub stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.models.fake_repo import write_tiny_model
from tests.models.hub_stand_in import HubStandIn
from vllama.models.store import ModelStore

REPO = "acme/Tiny-Instruct"


@pytest.fixture(autouse=True)
def user_catalog(tmp_path, monkeypatch) -> Path:
    """Each test gets its own user catalogue (never ~/.vllama), mapping `tiny` to the stand-in repo."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": {"tiny": {"1x": REPO, "latest": "1x"}}}))
    monkeypatch.setenv("VLLAMA_CATALOG", str(path))
    return path


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store")


@pytest.fixture
def tiny_src(tmp_path) -> Path:
    return write_tiny_model(tmp_path / "tiny", extra={"pytorch_model.bin": b"\0" * 100, "README.md": b"# tiny\n"})


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The stand-in with `acme/Tiny-Instruct` (a 1 MB safetensors) and a gated repo, as HF_ENDPOINT."""
    stand_in = HubStandIn().start()
    stand_in.add_folder(REPO, write_tiny_model(tmp_path / "remote", rows=4000,
                                               extra={"pytorch_model.bin": b"\0" * 4096, "onnx/model.onnx": b"x"}))
    stand_in.add_folder("acme/Gated", write_tiny_model(tmp_path / "gated"), gated=True)
    monkeypatch.setenv("HF_ENDPOINT", stand_in.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    yield stand_in
    stand_in.stop()
