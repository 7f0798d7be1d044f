"""GGUF on a GPU: the arguments vLLM gets for a GGUF-born model, with the platform mocked.

On a GPU with the vllm-gguf-plugin the GGUF is loaded as is (model = the GGUF file, config and
tokenizer from a folder written from its metadata); on the CPU, or without the plugin, the model
takes the dequantising path (store.servable)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest

from tests.fixtures import cache_dir
from tests.models.hub_stand_in import HubStandIn, Repo
from tests.models.ollama_fixture import GGUF_DIGEST, build_ollama_store, fetch_gguf, tree_hash
from vllama.engine import args as engine_args
from vllama.engine import gguf_args
from vllama.engine.args import EngineSettings
from vllama.engine.gguf_args import gguf_engine_kwargs, native_gguf
from vllama.engine.memory import DeviceMemory
from vllama.models.gguf_config import CONFIG_DIR
from vllama.models.pull import pull
from vllama.models.store import ModelStore

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

DEVICE = DeviceMemory(free=20 << 30, total=24 << 30, gpu=True)
HUB_REPO = "acme/SmolLM2-GGUF"


@pytest.fixture(scope="module")
def gguf(tmp_path_factory) -> Path:
    return fetch_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def gguf_parsed_once():
    """transformers' GGUF metadata parse (`load_gguf_checkpoint`, gguf's GGUFReader: seconds for the
    vocabulary) done once per file content, kept in the test cache between runs (keyed by the file and
    transformers' version): both tests below write a config folder from the same GGUF bytes, and each
    still runs all of gguf_config's writing on what it returns."""
    import transformers
    import transformers.configuration_utils
    import transformers.models.auto.tokenization_auto
    from transformers import modeling_gguf_pytorch_utils

    original = modeling_gguf_pytorch_utils.load_gguf_checkpoint
    parsed: dict[str, dict] = {}

    def parse(path) -> dict:
        key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        kept = cache_dir() / "gguf-metadata" / f"{key[:16]}-transformers-{transformers.__version__}.pickle"
        try:
            return pickle.loads(kept.read_bytes())
        except (OSError, EOFError, pickle.UnpicklingError):
            result = original(path)
            kept.parent.mkdir(parents=True, exist_ok=True)
            partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
            partial.write_bytes(pickle.dumps(result))
            partial.replace(kept)
            return result

    def once(path, return_tensors=False, *args, **kwargs):
        if return_tensors or args or kwargs:
            return original(path, return_tensors, *args, **kwargs)
        if str(path) not in parsed:
            parsed[str(path)] = parse(path)
        return copy.deepcopy(parsed[str(path)])

    with pytest.MonkeyPatch.context() as mp:
        for module in (modeling_gguf_pytorch_utils, transformers.configuration_utils,
                       transformers.models.auto.tokenization_auto):
            if getattr(module, "load_gguf_checkpoint", None) is original:
                mp.setattr(module, "load_gguf_checkpoint", once)
        yield


@pytest.fixture
def ollama_root(tmp_path, gguf) -> Path:
    return build_ollama_store(tmp_path / "ollama", gguf)


@pytest.fixture
def store(tmp_path, ollama_root) -> ModelStore:
    return ModelStore(tmp_path / "vllama", ollama=ollama_root)


def _platform(monkeypatch, gpu: bool, plugin: bool = True) -> None:
    monkeypatch.setattr(engine_args, "on_gpu", lambda: gpu)
    monkeypatch.setattr(gguf_args, "plugin_installed", lambda: plugin)


def _kwargs(model, store: ModelStore) -> dict:
    """What server.build's start_runner hands VllmRunner.start for this model on a GPU."""
    native = native_gguf(model, store.root)
    assert native is not None
    max_len = model.config.get("max_position_embeddings")
    base = EngineSettings().engine_kwargs(str(model.path), max_len, model.config, model.files, DEVICE)
    return gguf_engine_kwargs(base, *native)


def _check_config_folder(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (folder / "tokenizer.json").is_file() and (folder / "tokenizer_config.json").is_file()
    assert (folder / "generation_config.json").is_file()
    assert not list(folder.glob("*.safetensors"))  # the weights stay in the GGUF


def test_an_ollama_store_gguf_loads_as_is_on_a_gpu(monkeypatch, store, ollama_root, gguf_parsed_once):
    _platform(monkeypatch, gpu=True)
    before = tree_hash(ollama_root)
    model = store.get("ollama-pirate")
    kwargs = _kwargs(model, store)
    blob = ollama_root / "blobs" / GGUF_DIGEST.replace(":", "-")
    folder = store.root / CONFIG_DIR / GGUF_DIGEST.replace(":", "-")
    assert kwargs["model"] == str(blob)  # Ollama's own file, read in place
    assert kwargs["tokenizer"] == kwargs["hf_config_path"] == str(folder)
    assert kwargs["quantization"] == "gguf" and kwargs["load_format"] == "gguf"
    assert kwargs["max_model_len"] == 8192  # the GGUF's context_length, under the GPU default
    assert "dtype" not in kwargs and "enforce_eager" not in kwargs  # the CPU's settings are not a GPU's
    _check_config_folder(folder)
    assert not store.converted_dir.exists()  # nothing dequantised
    assert tree_hash(ollama_root) == before
    # A second name on the same GGUF shares the folder; a second load writes nothing.
    mtime = (folder / "config.json").stat().st_mtime_ns
    assert _kwargs(store.get("ollama-smol:q4"), store)["hf_config_path"] == str(folder)
    assert (folder / "config.json").stat().st_mtime_ns == mtime


def test_a_hub_gguf_loads_as_is_on_a_gpu(monkeypatch, tmp_path, gguf, gguf_parsed_once):
    _platform(monkeypatch, gpu=True)
    hub = HubStandIn().start()
    try:
        hub.repos[HUB_REPO] = Repo({"SmolLM2-135M-Instruct-Q4_1.gguf": gguf.read_bytes(), "README.md": b"# smol\n"})
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        store = ModelStore(tmp_path / "vllama", ollama=None)

        async def pulled() -> list[dict]:
            return [event async for event in pull(store, f"hf.co/{HUB_REPO}:Q4_1")]

        assert asyncio.run(pulled())[-1] == {"status": "success"}
    finally:
        hub.stop()
    model = store.get(f"hf.co/{HUB_REPO}:Q4_1")
    kwargs = _kwargs(model, store)
    assert kwargs["model"] == str(store.blob_path(GGUF_DIGEST))
    folder = store.root / CONFIG_DIR / GGUF_DIGEST.replace(":", "-")
    assert kwargs["tokenizer"] == kwargs["hf_config_path"] == str(folder)
    assert kwargs["quantization"] == "gguf" and kwargs["load_format"] == "gguf"
    _check_config_folder(folder)


@pytest.mark.parametrize("gpu,plugin", [(False, True), (False, False), (True, False)])
def test_elsewhere_the_gguf_is_dequantised(monkeypatch, store, gpu, plugin):
    _platform(monkeypatch, gpu=gpu, plugin=plugin)
    assert native_gguf(store.get("ollama-pirate"), store.root) is None
    assert not (store.root / CONFIG_DIR).exists()


def test_a_safetensors_model_is_never_a_gguf(monkeypatch, store, tmp_path):
    from tests.models.fake_repo import write_tiny_model

    _platform(monkeypatch, gpu=True)
    model = store.create_from_folder("tiny:1x", write_tiny_model(tmp_path / "tiny"))
    assert native_gguf(model, store.root) is None


@pytest.mark.parametrize("gpu", [True, False])  # mocked either way: the real platform is vLLM's whole import
def test_the_users_engine_args_stay_but_the_gguf_decides_the_loading(monkeypatch, gpu):
    _platform(monkeypatch, gpu=gpu)
    settings = EngineSettings(overrides={"max_num_seqs": 8, "quantization": "awq"})
    base = settings.engine_kwargs("/x", 4096, {}, [], DEVICE)
    kwargs = gguf_engine_kwargs(base, Path("/blobs/sha256-ab"), Path("/cfg/sha256-ab"))
    assert kwargs["max_num_seqs"] == 8
    assert kwargs["quantization"] == "gguf" and kwargs["model"] == "/blobs/sha256-ab"
