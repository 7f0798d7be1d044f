"""The user's Ollama store, read-only: listed, shown and served with Ollama's names, digests and sizes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.live_server import vllama_process
from tests.models.fake_repo import write_tiny_model
from tests.models.ollama_fixture import GGUF_DIGEST, GGUF_SIZE, NAMES, build_ollama_store, fetch_gguf, tree_hash
from vllama.models.gguf import read_header, show_model_info, show_tensors
from vllama.models.ollama_store import OllamaStore
from vllama.models.store import ModelStore, ReadOnlyModel

RECORDED_SHOW = Path(__file__).parent / "data" / "ollama-store-show-pirate.json"
DETAILS = {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
           "parameter_size": "134.52M", "quantization_level": "Q4_1"}


@pytest.fixture(scope="module")
def gguf(tmp_path_factory) -> Path:
    return fetch_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def _ollama(tmp_path_factory, gguf) -> tuple[Path, str]:
    """One Ollama folder for the module's tests, which only read it (each checks it is left as it
    was), and its tree_hash as built: hashing its 98 MB took ~0.13 s a test, and building it again."""
    root = build_ollama_store(tmp_path_factory.mktemp("ollama-root") / "ollama", gguf)
    return root, tree_hash(root)


@pytest.fixture
def ollama_root(_ollama) -> Path:
    return _ollama[0]


@pytest.fixture
def as_built(_ollama) -> str:
    """tree_hash of the Ollama folder before any test ran: what each test must leave it as."""
    return _ollama[1]


@pytest.fixture
def both(tmp_path, ollama_root) -> ModelStore:
    return ModelStore(tmp_path / "vllama", ollama=ollama_root)


def _manifest(root: Path, model: str, tag: str) -> Path:
    return root / "manifests" / "registry.ollama.ai" / "library" / model / tag


def _expected(root: Path, model: str, tag: str) -> tuple[str, int]:
    """(Ollama's digest, Ollama's size): the manifest file's sha256, its layers' and config's sizes."""
    raw = _manifest(root, model, tag).read_bytes()
    data = json.loads(raw)
    return hashlib.sha256(raw).hexdigest(), sum(x["size"] for x in [*data["layers"], data["config"]])


def test_reader_lists_manifests_and_layers(ollama_root):
    store = OllamaStore(ollama_root)
    names = sorted(name.display for name, _ in store.manifest_paths())
    assert names == sorted(NAMES)
    pirate = store.get(next(n for n, _ in store.manifest_paths() if n.model == "ollama-pirate"))
    assert [layer.kind for layer in pirate.layers] == ["model", "template", "system", "license", "params", "messages"]
    assert pirate.model_layer.digest == GGUF_DIGEST and pirate.model_layer.size == GGUF_SIZE
    assert pirate.system == "You are a pirate. Always speak like a pirate."
    assert pirate.params == {"num_ctx": 2048, "stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0}
    assert pirate.messages[1] == {"role": "assistant", "content": "Arr, I be Captain Smol, terror of the seven seas!"}
    assert pirate.license == "Apache License 2.0 (example licence text for tests)"
    assert (pirate.digest, pirate.size) == _expected(ollama_root, "ollama-pirate", "latest")


def test_list_has_ollamas_digests_sizes_and_details(both, ollama_root, as_built):
    before = as_built
    models = {m.name: m for m in both.list()}
    assert sorted(models) == sorted(NAMES)
    for name, model in models.items():
        base, tag = name.split(":")
        assert (model.digest, model.size) == _expected(ollama_root, base, tag)
        assert model.details == DETAILS
        assert model.origin == "ollama" and model.gguf == ollama_root / "blobs" / GGUF_DIGEST.replace(":", "-")
    # The recorded /api/tags of the same GGUF under smollm2:135m: 98,363,007 bytes with template and params.
    assert models["ollama-smol:q4"].size == 98_363_007
    assert tree_hash(ollama_root) == before


def test_record_carries_the_modelfile_layers(both):
    custom = both.get("Ollama-Custom-Template")  # any case, :latest implied
    assert custom.name == "ollama-custom-template:latest"
    assert custom.template.startswith("{{- if .System }}<|im_start|>system")
    assert custom.system == "Answer in one short sentence."
    assert custom.parameters == {"stop": ["<|im_end|>"]}
    assert custom.messages == [] and custom.license is None
    pirate = both.get("ollama-pirate")
    assert pirate.parameters["num_ctx"] == 2048 and len(pirate.messages) == 2
    assert pirate.capabilities == ["completion"]
    assert pirate.config["max_position_embeddings"] == 8192  # from the GGUF, before any conversion


def test_gguf_header_is_what_ollama_shows(gguf):
    """model_info and tensors as Ollama 0.24 printed them for this GGUF (reference r09)."""
    recorded = json.loads(RECORDED_SHOW.read_text())
    header = read_header(gguf)
    assert header.file_type == "Q4_1" and header.parameter_count == 134_515_008
    assert show_model_info(header) == recorded["model_info"]
    assert show_tensors(header) == recorded["tensors"]


def test_vllamas_own_name_wins(both, tmp_path, ollama_root):
    ours = both.create_from_folder("ollama-smol:q4", write_tiny_model(tmp_path / "tiny"))
    assert both.get("ollama-smol:q4").origin == "vllama"
    listed = [m for m in both.list() if m.name == "ollama-smol:q4"]
    assert [m.digest for m in listed] == [ours.digest]
    both.delete("ollama-smol:q4")  # ours goes; Ollama's shows again, untouched
    assert both.get("ollama-smol:q4").origin == "ollama"


def test_rm_never_touches_the_ollama_folder(both, ollama_root, as_built):
    before = as_built
    with pytest.raises(ReadOnlyModel, match="ollama rm ollama-pirate:latest"):
        both.delete("ollama-pirate")
    both.prune([GGUF_DIGEST])
    assert tree_hash(ollama_root) == before
    assert both.exists("ollama-pirate")


def test_cp_names_the_same_layers_in_vllamas_store(both, ollama_root, as_built):
    before = as_built
    copy = both.copy("ollama-pirate", "my-pirate")
    assert copy.origin == "vllama" and copy.digest == both.get("ollama-pirate").digest
    assert copy.gguf == ollama_root / "blobs" / GGUF_DIGEST.replace(":", "-")  # not copied
    assert copy.system == "You are a pirate. Always speak like a pirate."
    both.delete("my-pirate")
    assert not both.exists("my-pirate") and both.exists("ollama-pirate")
    assert tree_hash(ollama_root) == before


def test_a_default_store_reads_ollama_models(monkeypatch, tmp_path, ollama_root):
    monkeypatch.setenv("VLLAMA_MODELS", str(tmp_path / "default"))
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama_root))
    assert sorted(m.name for m in ModelStore().list()) == sorted(NAMES)
    assert ModelStore(tmp_path / "explicit").list() == []  # an explicit root reads only itself


# -- over HTTP, on the real server -------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory, gguf):
    root = tmp_path_factory.mktemp("served")
    ollama = build_ollama_store(root / "ollama", gguf)
    env = {"OLLAMA_MODELS": str(ollama), "VLLAMA_KV_CACHE_MEMORY_BYTES": str(256 << 20)}
    with vllama_process(root / "vllama", env=env, log_path=root / "serve.log") as url:
        yield url, ollama, root / "vllama"


def test_api_tags_and_show(served):
    url, ollama, _ = served
    before = tree_hash(ollama)
    tags = {m["name"]: m for m in httpx.get(f"{url}/api/tags").json()["models"]}
    digest, size = _expected(ollama, "ollama-smol", "q4")
    assert tags["ollama-smol:q4"]["digest"] == digest and tags["ollama-smol:q4"]["size"] == size
    details = tags["ollama-smol:q4"]["details"]  # 0.24's keys; a newer Ollama adds the lengths
    assert {k: details[k] for k in DETAILS} == DETAILS
    assert (details["context_length"], details["embedding_length"]) == (8192, 576)
    show = httpx.post(f"{url}/api/show", json={"model": "ollama-pirate"}).json()
    recorded = json.loads(RECORDED_SHOW.read_text())
    for key in ("license", "parameters", "template", "system", "messages", "model_info", "tensors"):
        assert show[key] == recorded[key], key
    assert f"\nFROM {ollama / 'blobs' / GGUF_DIGEST.replace(':', '-')}\n" in show["modelfile"]  # as Ollama's
    assert show["details"] == DETAILS
    assert show["capabilities"] == ["completion"]
    deleted = httpx.request("DELETE", f"{url}/api/delete", json={"model": "ollama-pirate"})
    assert deleted.status_code == 500 and "ollama rm" in deleted.json()["error"]
    assert tree_hash(ollama) == before


def test_api_create_from_an_ollama_model(served):
    url, ollama, _ = served
    before = tree_hash(ollama)
    made = httpx.post(f"{url}/api/create", json={"model": "brief-pirate", "from": "ollama-pirate",
                                                  "system": "Be brief.", "stream": False})
    assert (made.status_code, made.json()) == (200, {"status": "success"})
    show = httpx.post(f"{url}/api/show", json={"model": "brief-pirate"}).json()
    assert show["system"] == "Be brief." and show["details"] == DETAILS
    assert show["license"] == "Apache License 2.0 (example licence text for tests)"  # the base's layers stay
    assert httpx.request("DELETE", f"{url}/api/delete", json={"model": "brief-pirate"}).status_code == 200
    assert tree_hash(ollama) == before


@pytest.mark.engine
def test_generate_on_an_ollama_model(served):
    url, ollama, vllama = served
    before = tree_hash(ollama)
    body = {"model": "ollama-smol:q4", "prompt": "What is the capital of France?", "stream": False,
            "options": {"temperature": 0}}
    reply = httpx.post(f"{url}/api/generate", json=body, timeout=600)
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"].strip() == "The capital of France is Paris."
    assert [p.name for p in (vllama / "converted").iterdir()] == [GGUF_DIGEST.replace(":", "-")]
    assert tree_hash(ollama) == before


def test_create_from_an_ollama_model_keeps_its_gguf(both, ollama_root, as_built):
    """`create` FROM a model in the Ollama store: new settings layers in vllama's store, the GGUF where it is."""
    before = as_built
    base = both.get("ollama-smol:q4")
    settings = {"template": base.template, "system": "Be brief.",
                "parameters": {**base.parameters, "temperature": 0}}
    made = both.derive("brief-smol", base, settings)
    assert made.origin == "vllama" and made.gguf == base.gguf
    assert [layer.kind for layer in made.ollama.layers] == ["model", "template", "system", "params"]
    assert made.system == "Be brief." and made.template == base.template
    assert made.parameters == {"stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0}
    assert made.details == DETAILS and made.path == base.path  # the same conversion serves both
    both.delete("brief-smol")
    assert tree_hash(ollama_root) == before and both.exists("ollama-smol:q4")


def test_a_conversion_of_an_ollama_store_gguf_stays_while_ollama_has_it(both):
    model = both.get("ollama-smol:q4")
    model.path.mkdir(parents=True)
    (model.path / "config.json").write_text("{}")
    both.prune()
    assert model.path.is_dir() and both.get("ollama-smol:q4").is_converted
