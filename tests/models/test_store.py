"""The content-addressed store: create, list, get, copy, delete, blobs, atomic writes, loadable folders."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from datetime import datetime

import pytest
from safetensors.numpy import load_file

from tests.models.fake_repo import parameter_count, write_tiny_model
from vllama.models.names import InvalidName
from vllama.models.store import DigestMismatch, ModelNotFound, ModelStore, is_model_file, safe_relpath

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def blob_names(store: ModelStore) -> set[str]:
    return {p.name for p in store.blobs_dir.iterdir()} if store.blobs_dir.exists() else set()


def test_create_from_folder_and_get(store, tiny_src):
    model = store.create_from_folder("Tiny:1x", tiny_src)
    assert model.name == "Tiny:1x"
    manifest_file = store.manifests_dir / "registry.ollama.ai" / "library" / "Tiny" / "1x"
    assert HEX64.match(model.digest) and model.digest == hashlib.sha256(manifest_file.read_bytes()).hexdigest()
    assert [f["path"] for f in model.files] == [
        "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
        "tokenizer.json", "tokenizer_config.json"]  # no .bin, no README
    assert model.size == sum(f["size"] for f in model.files) == sum(
        (tiny_src / f["path"]).stat().st_size for f in model.files)
    assert isinstance(model.modified_at, datetime) and model.modified_at.tzinfo is not None
    assert model.details == {"parent_model": "", "format": "safetensors", "family": "llama", "families": ["llama"],
                             "parameter_size": "64K", "quantization_level": "F32"}
    assert model.config["model_type"] == "llama"
    assert model.manifest["files"] == model.files and model.manifest["format"] == "safetensors"
    # The folder is what vLLM loads: every file readable under its repo name.
    assert sorted(p.name for p in model.path.iterdir()) == sorted(f["path"] for f in model.files)
    assert json.loads((model.path / "config.json").read_text()) == model.config
    weights = load_file(str(model.path / "model.safetensors"))
    assert sum(w.size for w in weights.values()) == parameter_count()
    for name in ("tiny:1x", "TINY:1X", "library/tiny:1x", "registry.ollama.ai/library/tiny:1x"):
        assert store.get(name) == model


def test_latest_is_implied_and_errors(store, tiny_src):
    store.create_from_folder("tiny", tiny_src)
    assert store.get("tiny").name == "tiny:latest" == store.get("Tiny:Latest").name
    assert store.exists("TINY") and not store.exists("tiny:other")
    with pytest.raises(ModelNotFound):
        store.get("tiny:other")
    with pytest.raises(ModelNotFound):
        store.get("nothing")
    with pytest.raises(InvalidName):
        store.get("../x")


def test_list_newest_first_and_empty(store, tiny_src):
    assert store.list() == []
    store.create_from_folder("a", tiny_src)
    b = store.create_from_folder("user/b:2", tiny_src)
    os.utime(b.path.parent.parent / "manifests" / "registry.ollama.ai" / "user" / "b" / "2", (2e9, 2e9))
    assert [m.name for m in store.list()] == ["user/b:2", "a:latest"]


def test_copy_shares_digest_and_blobs_delete_keeps_shared(store, tiny_src):
    model = store.create_from_folder("tiny", tiny_src)
    blobs = blob_names(store)
    copy = store.copy("TINY", "mine/copy:v1")
    assert copy.name == "mine/copy:v1" and copy.digest == model.digest and copy.path == model.path
    assert blob_names(store) == blobs
    with pytest.raises(ModelNotFound):
        store.copy("nothing", "x")
    store.delete("tiny:latest")
    assert [m.name for m in store.list()] == ["mine/copy:v1"]
    assert blob_names(store) == blobs and copy.path.is_dir()
    assert not (store.manifests_dir / "registry.ollama.ai" / "library").exists()  # empty folders go
    store.delete("Mine/Copy:V1")
    assert blob_names(store) == set() and list(store.snapshots_dir.iterdir()) == []
    with pytest.raises(ModelNotFound):
        store.delete("mine/copy:v1")


def test_delete_keeps_blobs_another_model_uses(store, tiny_src, tmp_path):
    store.create_from_folder("a", tiny_src)
    other = write_tiny_model(tmp_path / "other", rows=10)  # same configs, different weights
    b = store.create_from_folder("b", other)
    store.delete("a")
    assert blob_names(store) == {f"sha256-{f['digest'][7:]}" for f in b.files}
    assert store.get("b").path.joinpath("config.json").is_file()


def test_create_replaces_in_place_keeping_spelling(store, tiny_src):
    store.create_from_folder("Tiny", tiny_src)
    store.create_from_folder("tiny", tiny_src, extra={"system": "be brief"})
    assert [m.name for m in store.list()] == ["Tiny:latest"]
    assert store.get("tiny").manifest["system"] == "be brief"


def test_add_blob_verifies(store, tmp_path):
    data = b"hello blob"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch) as err:
        store.add_blob(io.BytesIO(data), wrong)
    assert str(err.value) == f'digest mismatch, expected "{wrong}", got "{digest}"'
    assert not store.has_blob(wrong) and blob_names(store) == set() and list(store.partial_dir.iterdir()) == []
    assert store.add_blob(io.BytesIO(data)) == digest and store.has_blob(digest)
    assert store.has_blob(digest.replace(":", "-").upper().replace("SHA256", "sha256"))
    src = tmp_path / "f"
    src.write_bytes(data)
    assert store.add_blob(src, digest) == digest and src.exists()  # copied, source kept
    assert store.add_blob(src, digest, move=True) == digest and not src.exists()
    with pytest.raises(ValueError, match="invalid digest format"):
        store.has_blob("sha256:xyz")


def test_interrupted_blob_copy_publishes_nothing(store):
    class Broken(io.RawIOBase):
        reads = 0

        def readinto(self, b):
            self.reads += 1
            if self.reads > 2:
                raise OSError("disk went away")
            b[:4] = b"data"
            return 4

    with pytest.raises(OSError):
        store.add_blob(Broken())
    assert blob_names(store) == set() and list(store.partial_dir.iterdir()) == []


def test_crash_while_writing_a_manifest_keeps_the_old_one(store, tiny_src, monkeypatch):
    before = store.create_from_folder("tiny", tiny_src)
    manifest_file = store.manifests_dir / "registry.ollama.ai" / "library" / "tiny" / "latest"
    old_bytes = manifest_file.read_bytes()

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.create_from_folder("tiny", tiny_src, extra={"system": "new"})
    monkeypatch.undo()
    assert manifest_file.read_bytes() == old_bytes
    assert [p.name for p in manifest_file.parent.iterdir()] == ["latest"]  # no temp file left
    assert [m.digest for m in store.list()] == [before.digest]


def test_half_written_manifest_is_skipped(store, tiny_src, caplog):
    store.create_from_folder("good", tiny_src)
    bad = store.manifests_dir / "registry.ollama.ai" / "library" / "bad" / "latest"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"files": [')
    (bad.parent / ".latest.1234.tmp").write_text("{}")  # a temp file is never a model
    assert [m.name for m in store.list()] == ["good:latest"]
    assert "skipping unreadable manifest" in caplog.text


def test_snapshot_is_rebuilt_when_missing_or_broken(store, tiny_src):
    model = store.create_from_folder("tiny", tiny_src)
    (model.path / "config.json").unlink()
    assert (store.get("tiny").path / "config.json").is_file()
    import shutil
    shutil.rmtree(model.path)
    again = store.get("tiny")
    assert again.path == model.path and (again.path / "model.safetensors").is_file()
    assert os.path.islink(again.path / "model.safetensors")  # links, not copies
    assert not os.path.isabs(os.readlink(again.path / "model.safetensors"))


def test_write_manifest_checks_its_inputs(store, tiny_src):
    digest = store.add_blob(tiny_src / "config.json")
    with pytest.raises(ValueError, match="relative"):
        store.write_manifest("x", [{"path": "../config.json", "digest": digest}])
    with pytest.raises(ValueError, match="config.json"):
        store.write_manifest("x", [{"path": "other.json", "digest": digest}])
    with pytest.raises(FileNotFoundError):
        store.write_manifest("x", [{"path": "config.json", "digest": "sha256:" + "1" * 64}])
    model = store.write_manifest("x", [{"path": "config.json", "digest": digest}])
    assert model.details["parameter_size"] == "" and model.size == (tiny_src / "config.json").stat().st_size


def test_pinned_blobs_survive_a_delete(store, tiny_src):
    model = store.create_from_folder("tiny", tiny_src)
    with store.pinned(f["digest"] for f in model.files):
        store.delete("tiny")
        assert all(store.has_blob(f["digest"]) for f in model.files)
    store.prune(f["digest"] for f in model.files)
    assert blob_names(store) == set()


@pytest.mark.parametrize("path,wanted", [
    ("config.json", True), ("generation_config.json", True), ("tokenizer.json", True),
    ("tokenizer_config.json", True), ("tokenizer.model", True), ("special_tokens_map.json", True),
    ("vocab.json", True), ("vocab.txt", True), ("merges.txt", True), ("chat_template.jinja", True),
    ("chat_template.json", True), ("model.safetensors", True), ("model-00001-of-00002.safetensors", True),
    ("model.safetensors.index.json", True), ("preprocessor_config.json", True), ("modules.json", True),
    ("sentence_bert_config.json", True), ("config_sentence_transformers.json", True),
    ("1_Pooling/config.json", True), ("LICENSE", True), ("LICENSE.txt", True),
    ("pytorch_model.bin", False), ("pytorch_model.bin.index.json", False), ("model.gguf", False),
    ("onnx/model.onnx", False), ("original/consolidated.00.pth", False), ("flax_model.msgpack", False),
    ("tf_model.h5", False), ("README.md", False), (".gitattributes", False), ("modeling_x.py", False),
    ("original/tokenizer.model", False), ("openvino/openvino_model.xml", False),
])
def test_model_file_filter(path, wanted):
    assert is_model_file(path) is wanted


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../b", "./a", "a//b", "a\0b", "a\\b", "a/"])
def test_safe_relpath_rejects(path):
    with pytest.raises(ValueError):
        safe_relpath(path)
