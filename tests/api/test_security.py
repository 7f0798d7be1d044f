"""CORS as Ollama configures it, the DNS-rebinding Host check, and the optional API key, over a socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.live_server import abandon_request, app_in_thread
from vllama.api.app import build_app
from vllama.api.security import CorsPolicy, allowed_host_name, allowed_origins, is_loopback_bind
from vllama.engine.scheduler import Scheduler

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("OLLAMA_ORIGINS", raising=False)
    monkeypatch.delenv("VLLAMA_API_KEY", raising=False)


@pytest.fixture
def runner():
    return FakeRunner()


def make_app(runner: FakeRunner, bind_host: str | None = None):
    scheduler = Scheduler(lambda model: runner, max_loaded=2, check_every=0.05)
    return build_app(FakeStore(["fake:latest"]), scheduler, keep_alive=300.0, bind_host=bind_host)


@pytest.fixture
def url(runner):
    with app_in_thread(make_app(runner)) as base:
        yield base


def module_app(bind_host: str | None = None, api_key: str | None = None) -> Iterator[str]:
    """One app for a module's cases that only read from it. The middleware reads the environment
    as the app starts, so the variables are set (or cleared) just for that."""
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as env:
            env.delenv("OLLAMA_ORIGINS", raising=False)
            if api_key is None:
                env.delenv("VLLAMA_API_KEY", raising=False)
            else:
                env.setenv("VLLAMA_API_KEY", api_key)
            base = stack.enter_context(app_in_thread(make_app(FakeRunner(), bind_host=bind_host)))
        yield base


@pytest.fixture(scope="module")
def loopback():
    yield from module_app(bind_host="127.0.0.1")


# -- origins --------------------------------------------------------------------------------------

@pytest.mark.parametrize("origin", [
    "http://localhost", "https://localhost", "http://localhost:3000", "https://127.0.0.1:8443",
    "http://0.0.0.0:8080", "http://127.0.0.1", "app://obsidian.md", "file://", "tauri://localhost",
    "vscode-webview://abc123", "vscode-file://vscode-app", "HTTP://LOCALHOST:3000",
])
def test_default_origins_allowed(origin):
    assert CorsPolicy(allowed_origins("")).allows(origin)


@pytest.mark.parametrize("origin", [
    "http://example.com", "http://localhost.example.com", "https://127.0.0.1.nip.io", "null",
    "chrome-extension://abc", "http://192.168.1.2:3000",
])
def test_other_origins_refused(origin):
    assert not CorsPolicy(allowed_origins("")).allows(origin)


def test_ollama_origins_adds_to_the_list(monkeypatch):
    monkeypatch.setenv("OLLAMA_ORIGINS", " http://example.com, https://*.example.org,chrome-extension://*")
    policy = CorsPolicy(allowed_origins())
    assert policy.allows("http://example.com") and policy.allows("https://app.example.org")
    assert policy.allows("chrome-extension://abcdef") and policy.allows("http://localhost:1")
    assert not policy.allows("https://example.com") and not policy.allows("http://app.example.org")
    assert CorsPolicy(allowed_origins("*")).allows("http://anything.test")


def test_no_origin_is_untouched(url):
    r = httpx.post(url + "/api/chat", json=CHAT)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_disallowed_origin_is_403_with_empty_body(url):
    # reference/ollama-golden 28: OPTIONS from http://example.com -> 403, Content-Length 0
    r = httpx.options(url + "/api/chat", headers={"Origin": "http://example.com",
                                                  "Access-Control-Request-Method": "POST"})
    assert (r.status_code, r.content, r.headers["content-length"]) == (403, b"", "0")
    r = httpx.post(url + "/api/chat", json=CHAT, headers={"Origin": "http://example.com"})
    assert (r.status_code, r.content) == (403, b"")
    r = httpx.get(url + "/v1/models", headers={"Origin": "http://example.com"})
    assert r.status_code == 403


def test_allowed_origin_gets_cors_headers(url):
    origin = "http://localhost:5173"
    r = httpx.post(url + "/api/chat", json=CHAT, headers={"Origin": origin})
    assert r.status_code == 200 and r.json()["message"]["content"] == "The sky is blue."
    assert r.headers["access-control-allow-origin"] == origin
    assert "Origin" in r.headers.get_list("vary")
    r = httpx.get(url + "/v1/nothing", headers={"Origin": origin})  # errors carry them too
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == origin


def test_preflight(url):
    r = httpx.options(url + "/v1/chat/completions", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-stainless-os,x-stainless-new-thing"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert r.headers["access-control-allow-methods"] == "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
    allowed = r.headers["access-control-allow-headers"].split(",")
    for header in ("Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With", "Openai-Beta",
                   "X-Stainless-Os", "X-Stainless-Retry-Count", "X-Stainless-Timeout", "X-Stainless-New-Thing"):
        assert header in allowed
    assert r.headers["access-control-max-age"] == "43200"
    assert set(r.headers.get_list("vary")) == {"Origin", "Access-Control-Request-Method",
                                               "Access-Control-Request-Headers"}
    # any path: the middleware answers before routing, as gin-contrib/cors does
    assert httpx.options(url + "/nowhere", headers={"Origin": "http://localhost"}).status_code == 204


def test_wildcard_origins(runner, monkeypatch):
    monkeypatch.setenv("OLLAMA_ORIGINS", "*")
    with app_in_thread(make_app(runner)) as base:
        r = httpx.get(base + "/api/version", headers={"Origin": "https://example.com"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        r = httpx.options(base + "/api/chat", headers={"Origin": "https://example.com"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"


def test_origin_of_the_server_itself_is_not_cors(url):
    host = url.split("://", 1)[1]
    r = httpx.options(url + "/api/chat", headers={"Origin": f"http://{host}"})
    assert r.status_code == 405  # not a CORS request: the router answers
    assert httpx.get(url + "/api/version", headers={"Origin": f"http://{host}"}).status_code == 200


# -- Host check ---------------------------------------------------------------------------------

def test_loopback_binds():
    assert is_loopback_bind("127.0.0.1") and is_loopback_bind("::1") and is_loopback_bind("localhost")
    assert not is_loopback_bind("0.0.0.0") and not is_loopback_bind("192.168.1.4") and not is_loopback_bind(None)


@pytest.mark.parametrize("host, ok", [
    ("localhost", True), ("localhost:11434", True), ("127.0.0.1:11434", True), ("[::1]:11434", True),
    ("0.0.0.0", True), ("10.1.2.3", True), ("172.20.0.1:80", True), ("192.168.1.5", True),
    ("app.localhost", True), ("printer.local:631", True), ("host.docker.internal:11434", True),
    (socket.gethostname(), True), ("", True),
    ("evil.com", False), ("evil.com:11434", False), ("8.8.8.8", False), ("localhost.evil.com", False),
    ("172.32.0.1", False),
])
def test_host_check_when_bound_to_loopback(loopback, host, ok):
    r = httpx.get(loopback + "/api/version", headers={"Host": host})
    assert r.status_code == (200 if ok else 403)
    if not ok:
        assert r.content == b""


def test_host_names_shortcut_options(runner):
    assert allowed_host_name("x.internal") and not allowed_host_name("internal")
    with app_in_thread(make_app(runner, bind_host="127.0.0.1")) as base:
        assert httpx.options(base + "/api/chat", headers={"Host": "localhost"}).status_code == 204
        assert httpx.options(base + "/api/chat", headers={"Host": "127.0.0.1"}).status_code == 405


@pytest.mark.parametrize("bind_host", [None, "0.0.0.0", "192.168.1.4"])
def test_no_host_check_off_loopback(runner, bind_host):
    with app_in_thread(make_app(runner, bind_host=bind_host)) as base:
        assert httpx.get(base + "/api/version", headers={"Host": "evil.com"}).status_code == 200


# -- API key ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyed():
    yield from module_app(api_key="s3cret")


@pytest.mark.parametrize("header", [None, "Bearer wrong", "s3cret", "Basic s3cret", "Bearer", "Bearer s3cret2"])
def test_api_key_refuses(keyed, header):
    headers = {"Authorization": header} if header is not None else {}
    for method, path in (("GET", "/"), ("GET", "/api/tags"), ("POST", "/api/chat"), ("GET", "/v1/models")):
        r = httpx.request(method, keyed + path, headers=headers, json=CHAT if method == "POST" else None)
        assert (r.status_code, r.json()) == (401, {"error": "unauthorized"}), path


def test_api_key_accepts(keyed):
    for header in ("Bearer s3cret", "bearer s3cret"):
        r = httpx.post(keyed + "/api/chat", json=CHAT, headers={"Authorization": header})
        assert r.status_code == 200
    # a browser preflight carries no credentials; it is answered before the key check
    r = httpx.options(keyed + "/api/chat", headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 204
    r = httpx.get(keyed + "/api/tags", headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://localhost:3000"


@pytest.mark.sdk
def test_api_key_with_clients(keyed):
    import ollama
    import openai

    client = ollama.Client(host=keyed, headers={"Authorization": "Bearer s3cret"})
    assert client.chat(model="fake", messages=[{"role": "user", "content": "hi"}]).message.content
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=keyed).list()
    assert err.value.status_code == 401
    oai = openai.OpenAI(base_url=keyed + "/v1", api_key="s3cret", max_retries=0)
    assert [m.id for m in oai.models.list()] == ["fake:latest"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed + "/v1", api_key="nope", max_retries=0).models.list()


# -- streaming through the middleware ---------------------------------------------------------------

def test_streams_flow_through_the_middleware(runner, monkeypatch):
    monkeypatch.setenv("VLLAMA_API_KEY", "k")
    runner.hold = threading.Event()  # the chunks after the first are made only once it has arrived
    with app_in_thread(make_app(runner, bind_host="127.0.0.1")) as base:
        headers = {"Origin": "http://localhost:3000", "Authorization": "Bearer k"}
        start = time.monotonic()
        with httpx.stream("POST", base + "/api/generate", json={"model": "fake", "prompt": "hi"},
                          headers=headers) as r:
            lines = r.iter_lines()
            next(lines)
            assert time.monotonic() - start < 1.2  # the first chunk arrives before the last is made
            runner.hold.set()
            assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
            assert len(list(lines)) == 5


def test_disconnect_still_cancels_through_the_middleware(runner, monkeypatch):
    monkeypatch.setenv("VLLAMA_API_KEY", "k")
    runner.hold = threading.Event()  # never set: after its first chunk the request runs until cancelled
    app = make_app(runner, bind_host="127.0.0.1")
    headers = {"Origin": "http://localhost:3000", "Authorization": "Bearer k"}
    with app_in_thread(app) as base:
        # give up before the answer is ready: once the engine has the request (it got through the middleware)
        abandon_request(base, "POST", "/v1/chat/completions", json.dumps(CHAT).encode(), headers=headers,
                        until=lambda: runner.requests)
        deadline = time.monotonic() + 5
        while runner.cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.cancelled == 1 and runner.finished == 0
