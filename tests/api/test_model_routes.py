"""Model routes over a real socket: httpx for the wire shape, the `ollama` client for compatibility."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest

from tests.live_server import app_in_thread
from tests.models.fake_repo import write_tiny_model
from tests.models.hub_stand_in import HubStandIn
from vllama.api.app import build_app
from vllama.models.store import ModelStore

REPO = "acme/Tiny-Instruct"
JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson"
NOT_FOUND = "pull model manifest: file does not exist"
# Recorded from Ollama 0.24 (reference/ollama-golden 04, 05).
# The newest Ollama adds `capabilities` to each /api/tags entry (and context_length and
# embedding_length to its details).
TAGS_KEYS = ["name", "model", "modified_at", "size", "digest", "details", "capabilities"]
SHOW_KEYS = ["modelfile", "parameters", "template", "details", "model_info", "tensors", "capabilities", "modified_at"]


class FakeScheduler:
    def __init__(self):
        self.unloaded: list[str] = []

    def loaded(self):
        return []

    async def unload(self, key: str) -> bool:
        self.unloaded.append(key)
        return True

    async def shutdown(self) -> None:
        pass


@pytest.fixture
def hub(tmp_path, monkeypatch):
    stand_in = HubStandIn().start()
    stand_in.add_folder(REPO, write_tiny_model(tmp_path / "remote", extra={"pytorch_model.bin": b"\0" * 64}))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"models": {"tiny": {"latest": REPO}}}))
    monkeypatch.setenv("VLLAMA_CATALOG", str(catalog))
    monkeypatch.setenv("HF_ENDPOINT", stand_in.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    yield stand_in
    stand_in.stop()


@pytest.fixture
def store(tmp_path):
    return ModelStore(tmp_path / "models")


@pytest.fixture
def scheduler():
    return FakeScheduler()


@pytest.fixture
def url(store, scheduler, hub):
    with app_in_thread(build_app(store, scheduler)) as base:
        yield base


@pytest.fixture(scope="module")
def bare_url(tmp_path_factory):
    """One app on an empty store for the cases that are refused before any model or pull matters."""
    with app_in_thread(build_app(ModelStore(tmp_path_factory.mktemp("models")), FakeScheduler())) as base:
        yield base


@pytest.fixture
def client(url):
    import ollama

    with ollama.Client(host=url) as c:  # closed before the app stops: no keep-alive connection for it to wait on
        yield c


def lines(response: httpx.Response) -> list[dict]:
    assert response.text.endswith("\n") and "\n\n" not in response.text
    return [json.loads(line) for line in response.text.splitlines()]


# -- pull ---------------------------------------------------------------------------------------

def test_pull_streams_progress(url, store):
    r = httpx.post(url + "/api/pull", json={"model": "tiny"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == NDJSON
    events = lines(r)
    assert events[0] == {"status": "pulling manifest"} and events[-1] == {"status": "success"}
    assert [e["status"] for e in events[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]
    pulling = [e for e in events if e["status"].startswith("pulling ") and e["status"] != "pulling manifest"]
    assert pulling and all(e["status"] == f"pulling {e['digest'][7:19]}" for e in pulling)
    assert all(type(e["total"]) is int and e["completed"] == e["total"] for e in pulling)
    assert store.get("tiny").manifest["repo"] == REPO


def test_pull_not_streamed_returns_the_last_object(url):
    r = httpx.post(url + "/api/pull", json={"model": "", "name": "tiny", "stream": False}, timeout=30)
    assert (r.status_code, r.headers["content-type"], r.json()) == (200, JSON, {"status": "success"})


def test_pull_unknown_model(url):
    r = httpx.post(url + "/api/pull", json={"model": "no-such-model"})
    assert (r.status_code, r.headers["content-type"]) == (200, NDJSON)
    assert lines(r) == [{"status": "pulling manifest"}, {"error": NOT_FOUND}]
    r = httpx.post(url + "/api/pull", json={"model": "no-such-model", "stream": False})
    assert (r.status_code, r.json()) == (500, {"error": NOT_FOUND})


@pytest.mark.parametrize("body,status,message", [
    ({}, 400, "invalid model name"),
    ({"model": "a/b/c/d"}, 400, "invalid model name"),
    ({"model": "../etc"}, 400, "invalid model name"),
    ({"model": 3}, 400, "json: cannot unmarshal number into Go struct field PullRequest.model of type string"),
])
def test_pull_bad_requests(bare_url, body, status, message):
    r = httpx.post(bare_url + "/api/pull", json=body)
    assert (r.status_code, r.json()) == (status, {"error": message})


def test_pull_empty_body(url):
    r = httpx.post(url + "/api/pull", content=b"")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})


@pytest.mark.sdk
def test_ollama_client_pull_list_show_copy_delete(client, scheduler):
    import ollama

    assert client.list().models == []
    assert client.pull("tiny").status == "success"
    statuses = [p.status for p in client.pull("tiny", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"

    models = client.list().models
    assert [m.model for m in models] == ["tiny:latest"]
    assert models[0].details.family == "llama" and models[0].details.format == "safetensors"
    assert models[0].size > 0 and len(models[0].digest) == 64 and models[0].modified_at.tzinfo is not None

    shown = client.show("tiny")
    assert shown.capabilities == ["completion"] and shown.modelinfo["general.architecture"] == "llama"
    assert shown.details.parameter_size == "64K" and "stop" in shown.parameters

    assert client.copy("tiny", "me/copy:v1").status == "success"
    assert sorted(m.model for m in client.list().models) == ["me/copy:v1", "tiny:latest"]
    assert client.delete("tiny").status == "success"
    assert scheduler.unloaded == ["tiny:latest"]
    assert [m.model for m in client.list().models] == ["me/copy:v1"]
    with pytest.raises(ollama.ResponseError) as err:
        client.show("tiny")
    assert err.value.status_code == 404


# -- tags, show ---------------------------------------------------------------------------------

def test_tags_empty_and_head(url):
    r = httpx.get(url + "/api/tags")
    assert (r.status_code, r.headers["content-type"], r.json()) == (200, JSON, {"models": []})
    r = httpx.head(url + "/api/tags")
    assert r.status_code == 200 and r.content == b""


def test_tags_and_show_shapes(url, store, tmp_path):
    store.create_from_folder("tiny", write_tiny_model(tmp_path / "t"))
    entry = httpx.get(url + "/api/tags").json()["models"][0]
    assert list(entry) == TAGS_KEYS and entry["name"] == entry["model"] == "tiny:latest"
    assert entry["capabilities"] == ["completion"]
    assert entry["details"]["context_length"] > 0 and entry["details"]["embedding_length"] > 0
    assert list(entry["details"])[-2:] == ["context_length", "embedding_length"]
    assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
    r = httpx.post(url + "/api/show", json={"model": "TINY"})
    assert r.status_code == 200 and r.headers["content-type"] == JSON
    show = r.json()
    assert list(show) == SHOW_KEYS and show["capabilities"] == ["completion"]
    assert httpx.post(url + "/api/show", json={"name": "tiny:latest"}).status_code == 200


@pytest.mark.parametrize("body,status,message", [
    ({"model": "no-such-model"}, 404, "model 'no-such-model' not found"),
    ({"model": ""}, 400, "model is required"),
    ({}, 400, "model is required"),
    ({"model": "bad name"}, 400, "invalid model name"),
])
def test_show_errors(bare_url, body, status, message):
    r = httpx.post(bare_url + "/api/show", json=body)
    assert (r.status_code, r.headers["content-type"], r.json()) == (status, JSON, {"error": message})


def test_show_wrong_method(url):
    assert httpx.get(url + "/api/show").status_code == 405


# -- delete, copy -------------------------------------------------------------------------------

def test_delete(url, store, scheduler, tmp_path):
    store.create_from_folder("Tiny", write_tiny_model(tmp_path / "t"))
    r = httpx.request("DELETE", url + "/api/delete", json={"name": "tiny"})
    assert (r.status_code, r.content) == (200, b"")
    assert scheduler.unloaded == ["tiny:latest"] and store.list() == []
    assert list(store.blobs_dir.iterdir()) == []


@pytest.mark.parametrize("body,status,message", [
    ({"model": "no-such-model"}, 404, "model 'no-such-model' not found"),
    ({"model": ""}, 400, "model is required"),
    ({"model": "bad name"}, 400, 'name "bad name" is invalid'),
])
def test_delete_errors(bare_url, body, status, message):
    r = httpx.request("DELETE", bare_url + "/api/delete", json=body)
    assert (r.status_code, r.json()) == (status, {"error": message})


def test_copy(url, store, tmp_path):
    model = store.create_from_folder("tiny", write_tiny_model(tmp_path / "t"))
    r = httpx.post(url + "/api/copy", json={"source": "TINY", "destination": "mine:v2"})
    assert (r.status_code, r.content) == (200, b"")
    assert store.get("mine:v2").digest == model.digest


@pytest.mark.parametrize("body,status,message", [
    ({"source": "no-such-model", "destination": "x"}, 404, 'model "no-such-model" not found'),
    ({"source": "", "destination": "x"}, 400, 'source "" is invalid'),
    ({"source": "a b", "destination": "x"}, 400, 'source "a b" is invalid'),
    ({"source": "x", "destination": "../y"}, 400, 'destination "../y" is invalid'),
])
def test_copy_errors(bare_url, body, status, message):
    r = httpx.post(bare_url + "/api/copy", json=body)
    assert (r.status_code, r.json()) == (status, {"error": message})


# -- blobs, create ------------------------------------------------------------------------------

def test_blobs(url, store):
    data = b"some weights"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = httpx.head(f"{url}/api/blobs/{digest}")
    assert (r.status_code, r.content) == (404, b"")
    r = httpx.post(f"{url}/api/blobs/sha256:{'0' * 64}", content=data)
    expected = f'digest mismatch, expected "sha256:{"0" * 64}", got "{digest}"'
    assert (r.status_code, r.json()) == (400, {"error": expected})
    assert httpx.post(f"{url}/api/blobs/{digest}", content=data).status_code == 201
    assert store.has_blob(digest) and store.blob_path(digest).read_bytes() == data
    assert httpx.head(f"{url}/api/blobs/{digest}").status_code == 200
    assert httpx.post(f"{url}/api/blobs/{digest}", content=data).status_code == 200
    r = httpx.head(f"{url}/api/blobs/sha256:xyz")
    assert r.status_code == 400
    assert httpx.post(f"{url}/api/blobs/md5:abc", content=data).json() == {"error": "invalid digest format"}
    assert list(store.partial_dir.iterdir()) == []


@pytest.mark.sdk
def test_create_from_uploaded_files_with_the_ollama_client(client, store, tmp_path):
    folder = write_tiny_model(tmp_path / "t")
    files = {p.name: client.create_blob(p) for p in sorted(folder.iterdir())}
    assert client.create("made", files=files).status == "success"
    progress = [p.status for p in client.create("made2", files=files, stream=True)]
    assert progress[-2:] == ["writing manifest", "success"] and progress[0].startswith("using existing layer sha256:")
    assert store.get("made").digest == store.get("made2").digest
    shown = client.show("made")
    assert shown.details.family == "llama" and shown.modelinfo["llama.block_count"] == 2


@pytest.mark.sdk
def test_create_from_model_with_settings(client, url, store, tmp_path):
    store.create_from_folder("base", write_tiny_model(tmp_path / "t"))
    assert client.create("derived", from_="base", system="Be brief.", parameters={"temperature": 0.1},
                         license="MIT").status == "success"
    shown = client.show("derived")
    assert shown.license == "MIT"
    assert httpx.post(url + "/api/show", json={"model": "derived"}).json()["system"] == "Be brief."
    assert "temperature                    0.1" in shown.parameters
    assert store.get("derived").parameters["temperature"] == 0.1
    assert store.get("base").parameters["temperature"] == 0.7


def test_create_from_a_model_that_must_be_pulled(url, store):
    r = httpx.post(url + "/api/create", json={"model": "mine", "from": "tiny"}, timeout=30)
    statuses = [e["status"] for e in lines(r)]
    assert statuses[0] == "pulling manifest" and statuses.count("success") == 1 and statuses[-1] == "success"
    assert store.get("mine").files == store.get("tiny").files


@pytest.mark.parametrize("body,status,message", [
    ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
    ({"model": ""}, 400, "model is required"),
    ({"model": "bad name", "from": "y"}, 400, "invalid model name"),
    ({"model": "x", "files": {"../config.json": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
    ({"model": "x", "files": {"config.json": "nope"}}, 400, "invalid digest format"),
    ({"model": "x", "from": "y", "quantize": "q4_K_M"}, 400,
     "quantize is not supported: vllama serves the weights as they are"),
])
def test_create_errors(bare_url, body, status, message):
    r = httpx.post(bare_url + "/api/create", json=body)
    assert (r.status_code, r.json()) == (status, {"error": message})


def test_create_from_unknown_model(url):
    r = httpx.post(url + "/api/create", json={"model": "x", "from": "no-such-model", "stream": False})
    assert (r.status_code, r.json()) == (500, {"error": NOT_FOUND})


def test_create_from_gguf_calls_the_converter(url, store, tmp_path, monkeypatch):
    import vllama.models.gguf as gguf

    seen = {}

    def fake_dequantize(gguf_path, out_dir, **kwargs):
        seen["bytes"] = gguf_path.read_bytes()
        seen["name"] = gguf_path.name
        return write_tiny_model(out_dir)

    monkeypatch.setattr(gguf, "dequantize_gguf", fake_dequantize)
    data = b"GGUF fake"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx.post(f"{url}/api/blobs/{digest}", content=data)
    r = httpx.post(url + "/api/create", json={"model": "from-gguf", "files": {"m.gguf": digest}})
    assert [e["status"] for e in lines(r)] == ["parsing GGUF", "converting model", "writing manifest", "success"]
    assert seen == {"bytes": data, "name": "model.gguf"}
    assert store.get("from-gguf").details["family"] == "llama"
    assert [p.name for p in store.partial_dir.iterdir()] == []


def test_create_from_files_needs_a_config(url):
    data = b"weights only"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx.post(f"{url}/api/blobs/{digest}", content=data)
    r = httpx.post(url + "/api/create", json={"model": "x", "files": {"model.safetensors": digest}})
    assert r.status_code == 400 and "no config.json" in r.json()["error"]
    r = httpx.post(url + "/api/create", json={"model": "x", "files": {"config.json": "sha256:" + "1" * 64}})
    assert r.status_code == 400 and r.json()["error"].startswith(f'blob "sha256:{"1" * 64}" not found')
