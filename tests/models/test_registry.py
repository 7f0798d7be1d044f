"""`pull` of library names from Ollama's registry (a local stand-in): progress, digests, resume, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from tests.models.gguf_files import write_gguf
from tests.models.ollama_fixture import build_ollama_store, fetch_gguf
from tests.models.registry_stand_in import RegistryStandIn, digest_of
from vllama.models.ollama_store import OllamaStore
from vllama.models.pull import NOT_FOUND, PullError, pull
from vllama.models.registry import REGISTRY_ENV

TEMPLATE = b"{{ .Prompt }}"
PARAMS = b'{"stop":["<|im_end|>"],"temperature":0.5}'
CONFIG = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
          "model_type": "76.80K", "file_type": "Q4_K_M"}


@pytest.fixture(scope="module")
def _stand_in(tmp_path_factory):
    """One stand-in and one GGUF for the module; `registry` puts its state back for each test."""
    stand_in = RegistryStandIn().start()
    gguf = write_gguf(tmp_path_factory.mktemp("registry") / "tiny.gguf")
    stand_in.add_model("library/tinyreg:q4", [("model", gguf), ("template", TEMPLATE), ("params", PARAMS)], CONFIG)
    yield stand_in, dict(stand_in.manifests), dict(stand_in.blobs)
    stand_in.stop()


@pytest.fixture
def registry(_stand_in, monkeypatch):
    """The stand-in as a fresh one is: `library/tinyreg:q4` only, no knobs set, an empty log."""
    stand_in, manifests, blobs = _stand_in
    for live, start in ((stand_in.manifests, manifests), (stand_in.blobs, blobs)):
        live.clear()
        live.update(start)
    stand_in.drop_after.clear()
    stand_in.corrupt.clear()
    stand_in.requests.clear()
    monkeypatch.setenv(REGISTRY_ENV, stand_in.url)
    return stand_in


def collect(store, name):
    async def go():
        events = []
        try:
            async for event in pull(store, name):
                events.append(event)
        except PullError as err:
            return events, str(err)
        return events, None

    return asyncio.run(go())


def test_pull_streams_ollamas_progress_and_verified_layers(store, registry):
    events, error = collect(store, "tinyreg:q4")
    assert error is None
    raw = registry.manifests["library/tinyreg:q4"]
    manifest = json.loads(raw)
    digests = [layer["digest"] for layer in [*manifest["layers"], manifest["config"]]]
    assert events[0] == {"status": "pulling manifest"}
    assert [e["status"] for e in events[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_events = events[1:-3]
    assert [d for d in dict.fromkeys(e["digest"] for e in layer_events)] == digests  # layers, then the config
    for digest in digests:
        mine = [e for e in layer_events if e["digest"] == digest]
        assert all(e["status"] == f"pulling {digest[7:19]}" for e in mine)
        assert mine[-1]["completed"] == mine[-1]["total"] == len(registry.blobs[digest])
    for digest in digests:  # every blob is what its name says
        assert hashlib.sha256(store.blob_path(digest).read_bytes()).hexdigest() == digest[7:]
    model = store.get("tinyreg:q4")
    assert model.digest == hashlib.sha256(raw).hexdigest()  # Ollama's digest: the manifest as served
    assert model.size == sum(len(registry.blobs[d]) for d in digests)
    assert model.details["format"] == "gguf" and model.details["quantization_level"] == "Q4_K_M"
    assert model.template == TEMPLATE.decode() and model.parameters == {"stop": ["<|im_end|>"], "temperature": 0.5}
    assert model.origin == "vllama" and model.gguf == store.blob_path(digests[0])
    assert model.config["max_position_embeddings"] == 2048
    assert model.capabilities == ["completion"]  # `{{ .Prompt }}` reads no .Tools
    again, error = collect(store, "tinyreg:q4")  # everything is here: one line per layer, no download
    assert error is None and len(again) == 1 + len(digests) + 3


def test_a_cut_mid_blob_resumes(store, registry):
    model_digest = json.loads(registry.manifests["library/tinyreg:q4"])["layers"][0]["digest"]
    registry.drop_after[model_digest] = 100_000
    events, error = collect(store, "tinyreg:q4")
    assert error is None and events[-1] == {"status": "success"}
    assert (f"/cdn/{model_digest}", "bytes=100000-") in registry.requests
    assert hashlib.sha256(store.blob_path(model_digest).read_bytes()).hexdigest() == model_digest[7:]


def test_a_bad_digest_is_refused(store, registry):
    model_digest = json.loads(registry.manifests["library/tinyreg:q4"])["layers"][0]["digest"]
    registry.corrupt.add(model_digest)
    events, error = collect(store, "tinyreg:q4")
    assert error.startswith(f"digest mismatch, file must be downloaded again: want {model_digest}, got sha256:")
    assert events[-1] == {"status": "verifying sha256 digest"}
    assert not store.has_blob(model_digest) and store.list() == []
    assert not (store.partial_dir / f"sha256-{model_digest[7:]}.partial").exists()  # the bad copy is gone
    registry.corrupt.clear()
    assert collect(store, "tinyreg:q4")[1] is None  # the next pull fetches it again


def test_an_unknown_name_is_ollamas_error(store, registry):
    events, error = collect(store, "no-such-model")
    assert (events, error) == ([{"status": "pulling manifest"}], NOT_FOUND)
    assert ("/v2/library/no-such-model/manifests/latest", None) in registry.requests


def test_an_unreachable_registry_is_not_found(store, monkeypatch):
    monkeypatch.setenv(REGISTRY_ENV, "http://127.0.0.1:9")  # nothing listens on the discard port
    assert collect(store, "tinyreg") == ([{"status": "pulling manifest"}], NOT_FOUND)


def test_a_pulled_model_is_the_ollama_stores_model(store, registry, tmp_path):
    """The recorded Ollama store served as a registry: the pull lands the same manifest and layers."""
    ollama = build_ollama_store(tmp_path / "ollama", fetch_gguf(tmp_path / "gguf"))
    registry.add_store(ollama)
    events, error = collect(store, "ollama-pirate")
    assert error is None
    theirs = next(OllamaStore(ollama).get(n) for n, _ in OllamaStore(ollama).manifest_paths() if n.model == "ollama-pirate")
    ours = store.get("ollama-pirate")
    assert (ours.digest, ours.size, ours.details) == (theirs.digest, theirs.size, theirs.details)
    assert ours.system == theirs.system and ours.messages == theirs.messages and ours.parameters == theirs.params
    assert ours.gguf == store.blob_path(digest_of(theirs.model_path.read_bytes()))  # in vllama's own blobs
    assert ours.path == store.converted_dir / theirs.model_layer.digest.replace(":", "-")  # converted on first load


def test_rm_of_a_pulled_model_removes_its_layers(store, registry):
    collect(store, "tinyreg:q4")
    model = store.get("tinyreg:q4")
    blobs = [layer.digest for layer in (*model.ollama.layers, model.ollama.config_layer)]
    store.delete("tinyreg:q4")
    assert not any(store.has_blob(d) for d in blobs)


def test_capabilities_come_from_the_go_template(store, registry, tmp_path):
    gguf = write_gguf(tmp_path / "tools.gguf", seed=3)
    registry.add_model("library/tooly:latest", [("model", gguf), ("template", b"{{ if .Tools }}T{{ end }}{{ .Prompt }}")],
                       CONFIG)
    assert collect(store, "tooly")[1] is None
    assert store.get("tooly").capabilities == ["completion", "tools"]


def test_a_conversion_goes_with_the_last_model_on_its_gguf(store, registry):
    collect(store, "tinyreg:q4")
    model = store.get("tinyreg:q4")
    model.path.mkdir(parents=True)  # as servable leaves it after the first load
    (model.path / "config.json").write_text("{}")
    store.copy("tinyreg:q4", "tinyreg:copy")
    store.delete("tinyreg:q4")
    assert model.path.is_dir()  # the copy still uses it
    store.delete("tinyreg:copy")
    assert not model.path.exists()


def test_a_name_on_another_host_pulls_from_that_registry(store, registry, monkeypatch):
    monkeypatch.delenv(REGISTRY_ENV)
    host = registry.url.removeprefix("http://")
    name = f"{host}/library/tinyreg:q4"

    async def go():
        return [event async for event in pull(store, name, insecure=True)]  # plain HTTP, as Ollama's --insecure

    assert asyncio.run(go())[-1] == {"status": "success"}
    assert store.get(name).name == name and store.get(name).details["format"] == "gguf"
