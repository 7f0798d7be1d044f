"""A model's record is read from disk once per manifest: requests reuse it until the manifest changes."""

from __future__ import annotations

import pytest

from tests.models.ollama_fixture import build_ollama_store, fetch_gguf, tree_hash
from vllama.models.store import ModelStore


@pytest.fixture
def counted(monkeypatch):
    """How many times a vllama manifest was read into a record."""
    reads: list[str] = []
    read = ModelStore._read

    def counting(self, name, path):
        reads.append(name.display)
        return read(self, name, path)

    monkeypatch.setattr(ModelStore, "_read", counting)
    return reads


def test_a_record_is_read_once_and_reused(store, tiny_src, counted):
    store.create_from_folder("tiny", tiny_src)
    first = store.get("tiny")
    assert store.get("TINY:latest") is first and store.list() == [first]
    assert counted == ["tiny:latest"]  # once, when create returned it
    assert first.capabilities is store.get("tiny").capabilities  # computed once, with the record


def test_a_rewritten_manifest_is_read_again(store, tiny_src, counted):
    base = store.create_from_folder("tiny", tiny_src)
    store.derive("tiny", base, {"system": "Be brief."})  # the same name, a new manifest
    again = store.get("tiny")
    assert again.system == "Be brief." and again.digest != base.digest


def test_a_deleted_model_is_gone_and_its_snapshot_still_repaired(store, tiny_src):
    model = store.create_from_folder("tiny", tiny_src)
    (model.path / "config.json").unlink()
    assert (store.get("tiny").path / "config.json").is_file()  # a cached record still rebuilds it
    store.delete("tiny")
    assert not store.exists("tiny") and store.list() == []


@pytest.fixture(scope="module")
def gguf(tmp_path_factory):
    return fetch_gguf(tmp_path_factory.mktemp("gguf"))


def test_an_ollama_store_record_is_reused_and_the_store_untouched(tmp_path, gguf, monkeypatch):
    ollama_root = build_ollama_store(tmp_path / "ollama", gguf)
    before = tree_hash(ollama_root)
    store = ModelStore(tmp_path / "vllama", ollama=ollama_root)
    name = store.list()[0].name
    reads: list[str] = []
    read = type(store.ollama).read

    def counting(self, model_name, path):
        reads.append(model_name.display)
        return read(self, model_name, path)

    monkeypatch.setattr(type(store.ollama), "read", counting)
    first = store.get(name)
    assert store.get(name) is first and reads == []  # list() already read it
    # once its GGUF is converted, the record says so (a fresh read)
    folder = first.path
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    assert store.get(name) is not first and store.get(name).is_converted
    assert tree_hash(ollama_root) == before
