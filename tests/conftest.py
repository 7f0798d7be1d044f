"""Session fixtures: a model store with three offline models, and one live `vllama serve` on the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live_server import HTTP, vllama_process

TINY = "tiny"  # a random 2-layer Llama: fast, meaningless text
SMOL = "smollm2:135m"  # SmolLM2-135M-Instruct from PyPI: real answers
MINILM = "all-minilm"  # all-MiniLM-L6-v2 from PyPI: embeddings only

# Small KV caches keep two engines within a CI machine's memory.
ENGINE_ENV = {"VLLAMA_KV_CACHE_MEMORY_BYTES": str(256 << 20), "OLLAMA_MAX_LOADED_MODELS": "3"}


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def smol_folder() -> Path:
    from vllama.models.embedded import install_default_model

    return install_default_model().path  # registered by install.sh; built here only if it was not


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, tiny_folder, smol_folder) -> Path:
    from vllama.models.embedded_minilm import install_minilm
    from vllama.models.store import ModelStore

    root = tmp_path_factory.mktemp("models")
    store = ModelStore(root)
    store.create_from_folder(TINY, tiny_folder)
    store.create_from_folder(SMOL, smol_folder)
    install_minilm(store, MINILM)  # the installed package's folder (dev extra), else the wheel from PyPI
    return root


@pytest.fixture(scope="session")
def server(models_dir, tmp_path_factory) -> str:
    """Base URL of a real `vllama serve` (vLLM engine) shared by the whole session."""
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    with vllama_process(models_dir, env=ENGINE_ENV, log_path=log) as url:
        yield url


def pytest_sessionfinish(session, exitstatus) -> None:
    HTTP.close()
