"""`rm` takes the blobs no other model uses with it, the GGUF a model was created from included
(it stayed behind before: a 98 MB upload per `create` from a GGUF). Only vllama's own store: the
user's Ollama store is read, never written."""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest

from tests.live_server import app_in_thread
from tests.models.fake_repo import write_tiny_model
from vllama.api.app import build_app
from vllama.models.store import ModelStore

GGUF = b"GGUF stand-in bytes"


def blobs(store: ModelStore) -> set[str]:
    return {p.name for p in store.blobs_dir.iterdir()} if store.blobs_dir.is_dir() else set()


def test_the_source_blob_goes_with_the_last_name(store, tmp_path):
    source = store.add_blob(io.BytesIO(GGUF))
    store.create_from_folder("made", write_tiny_model(tmp_path / "made"), sources=[source])
    assert store.get("made").manifest["sources"] == [{"digest": source, "size": len(GGUF)}]
    store.copy("made", "again")
    store.delete("made")
    assert store.has_blob(source)  # `again` still names it
    store.delete("again")
    assert blobs(store) == set() and not any(store.snapshots_dir.iterdir())


def test_a_source_blob_another_model_uses_stays(store, tmp_path):
    source = store.add_blob(io.BytesIO(GGUF))
    store.create_from_folder("one", write_tiny_model(tmp_path / "one"), sources=[source])
    store.create_from_folder("two", write_tiny_model(tmp_path / "two", rows=40), sources=[source])
    store.delete("one")
    assert store.has_blob(source)
    store.delete("two")
    assert not store.has_blob(source)


def test_a_missing_source_blob_is_refused(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.create_from_folder("x", write_tiny_model(tmp_path / "x"), sources=["sha256:" + "0" * 64])


class _Scheduler:
    def loaded(self):
        return []

    async def unload(self, key: str) -> bool:
        return True

    async def shutdown(self) -> None:
        pass


def test_rm_of_a_model_created_from_an_uploaded_gguf_removes_the_gguf(store, tmp_path, monkeypatch):
    import vllama.models.gguf as gguf

    monkeypatch.setattr(gguf, "dequantize_gguf", lambda gguf_path, out_dir, **kw: write_tiny_model(out_dir))
    digest = "sha256:" + hashlib.sha256(GGUF).hexdigest()
    with app_in_thread(build_app(store, _Scheduler())) as url:
        assert httpx.post(f"{url}/api/blobs/{digest}", content=GGUF).status_code == 201
        r = httpx.post(url + "/api/create", json={"model": "from-gguf", "files": {"m.gguf": digest}, "stream": False})
        assert r.status_code == 200 and r.json() == {"status": "success"}
        assert store.has_blob(digest) and len(blobs(store)) > 1
        # the same upload serves a second create, as on Ollama (the client checks the blob first)
        r = httpx.post(url + "/api/create", json={"model": "second", "files": {"m.gguf": digest}, "stream": False})
        assert r.status_code == 200
        assert httpx.request("DELETE", url + "/api/delete", json={"model": "from-gguf"}).status_code == 200
        assert store.has_blob(digest)
        assert httpx.request("DELETE", url + "/api/delete", json={"model": "second"}).status_code == 200
    assert blobs(store) == set()
