"""The routes that need ollama.com answer as a local Ollama that is not signed in: the errors its
CLI and clients read, not a bare 404."""

from __future__ import annotations

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app

JSON = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def url():
    with shared_app(FakeStore(["fake:latest"])) as app:
        app.reset(FakeRunner())
        yield app.url


def test_account(url):
    r = httpx.post(url + "/api/me")
    assert (r.status_code, r.headers["content-type"], r.json()) == (401, JSON, {"error": "unauthorized"})
    r = httpx.post(url + "/api/signout")
    assert (r.status_code, r.text) == (200, "null")
    assert httpx.delete(url + "/api/user/keys/c3NoLWVkMjU1MTk=").status_code == 200
    assert httpx.get(url + "/api/me").status_code == 405


def test_status(url):
    assert httpx.get(url + "/api/status").json() == {"cloud": {"disabled": False, "source": "none"}}


@pytest.mark.parametrize("path", ["/api/experimental/web_search", "/api/experimental/web_fetch"])
def test_web_tools(url, path):
    r = httpx.post(url + path, json={"query": "vllm"})
    assert (r.status_code, r.json()) == (401, {"error": "unauthorized"})
    r = httpx.post(url + path, content=b"")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})


@pytest.mark.sdk
def test_push(url):
    import ollama

    r = httpx.post(url + "/api/push", json={"model": "fake"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert [line for line in r.text.splitlines()] == ['{"status":"retrieving manifest"}', '{"error":"unauthorized"}']
    r = httpx.post(url + "/api/push", json={"model": "nothing", "stream": False})
    assert (r.status_code, r.json()) == (500, {"error": "file does not exist"})
    assert httpx.post(url + "/api/push", json={}).json() == {"error": "model is required"}
    # the Python client raises what the CLI turns into its "not authorized to push" hint
    with pytest.raises(ollama.ResponseError) as err, ollama.Client(host=url) as client:  # closed: no keep-alive left
        client.push("fake")
    assert "unauthorized" in str(err.value)
