"""Session fixtures: a model store with three offline models, and one live `vllama serve` on the real engine."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import httpx._transports.default as httpx_transport
import httpx2._transports.default as httpx2_transport
import pytest

from tests.hang_guard import (  # noqa: F401 (hooks)
    pytest_timeout_cancel_timer,
    pytest_timeout_set_timer,
    pytest_xdist_make_scheduler,
)
from tests.live_server import HTTP, vllama_process
from tests.worker_exit import pytest_unconfigure  # noqa: F401 (hook)

# Where PYTHONDONTWRITEBYTECODE is set (as on these machines), every worker would rewrite every test
# module's asserts and every `vllama` subprocess compile vllama's sources again, on every run: both are
# cached in __pycache__ (git-ignored) instead, as Python does by default.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Every test speaks plain HTTP on loopback, yet each httpx client (thousands in a run: one per
# `httpx.post`, one per SDK client) builds an SSL context and loads the CA bundle, 40-250 ms of CPU
# here. The default context is built once per test process instead, for httpx and for httpx2 (the
# openai and anthropic SDKs' fork of it: 1.3 s of a run's CPU before it was shared too).
def _share_default_ssl_context(transport) -> None:
    build = transport.create_ssl_context
    default = functools.cache(build)  # built on first use: a worker that runs no SDK test never needs httpx2's

    def shared(verify=True, cert=None, trust_env=True):
        if verify is True and cert is None:
            return default()
        return build(verify=verify, cert=cert, trust_env=trust_env)

    transport.create_ssl_context = shared


_share_default_ssl_context(httpx_transport)
_share_default_ssl_context(httpx2_transport)

TINY = "tiny"  # a random 2-layer Llama: fast, meaningless text
SMOL = "smollm2:135m"  # SmolLM2-135M-Instruct from PyPI: real answers
MINILM = "all-minilm"  # all-MiniLM-L6-v2 from PyPI: embeddings only

# Small KV caches keep two engines within a CI machine's memory.
ENGINE_ENV = {"VLLAMA_KV_CACHE_MEMORY_BYTES": str(256 << 20), "OLLAMA_MAX_LOADED_MODELS": "3",
              "VLLAMA_IMPORT_EARLY": "1", "VLLAMA_CPU_PRELOAD": "1"}  # as `vllama serve` starts for a user


@pytest.fixture(scope="session")
def tiny_folder() -> Path:
    """The tiny Llama from the test cache (read only: tests copy it into stores): built once, not by
    every worker of every run (a torch import and a tokenizer training each)."""
    from tests.fixtures import tiny_llama_dir

    return tiny_llama_dir()


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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Under xdist (`--dist loadgroup`) the engine tests are the long units, spread over both workers:
    every test on the session's live server in one group (the server starts once), every other engine
    module in a group of its own (its module fixtures, often an engine, start once). They go first, so
    the short tests fill in around them and the workers finish together. The other tests that import
    vLLM, torch or transformers share a group too, so only one worker pays for those imports, and so
    do those that drive the OpenAI, Anthropic or Ollama Python client (imported in the tests, not at
    collection)."""
    long_units = []
    for item in items:
        if "server" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("server"))
        elif item.get_closest_marker("engine"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
        elif item.get_closest_marker("heavy_imports"):
            item.add_marker(pytest.mark.xdist_group("heavy_imports"))
        elif item.get_closest_marker("sdk"):
            item.add_marker(pytest.mark.xdist_group("sdk"))
        else:
            continue
        long_units.append(item)
    first = set(map(id, long_units))
    items[:] = long_units + [item for item in items if id(item) not in first]


def pytest_sessionfinish(session, exitstatus) -> None:
    HTTP.close()
