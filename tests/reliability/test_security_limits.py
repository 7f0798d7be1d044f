"""Security under hostile use: request size limits, the API key on every route, no path out of the
model store from a name, a digest or a file path, remote code only when asked for, and the
DNS-rebinding guard in front of the routes that change things. (CORS origins, preflights and the
Host check's table live in tests/api/test_security.py.)"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from tests.api.fake_engine import FakeRunner, fake_app
from tests.live_server import HTTP, app_in_thread
from tests.models.fake_repo import CONFIG, write_tiny_model
from tests.reliability.conftest import store_app
from vllama.api.app import build_app
from vllama.engine.scheduler import Scheduler
from vllama.models.store import ModelStore, is_model_file

SETTINGS = settings(max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "25")), deadline=None,
                    database=None, derandomize=True, suppress_health_check=list(HealthCheck))


# -- request size -----------------------------------------------------------------------------

@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv("VLLAMA_MAX_REQUEST_BYTES", str(1 << 20))


def _too_large(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert (error["message"] if isinstance(error, dict) else error) == "http: request body too large"


def test_default_limit_is_32_mib():
    from vllama.api.errors import max_request_bytes

    assert max_request_bytes() == 32 << 20


def test_declared_length_over_the_limit_is_refused_before_the_body(fake_url):
    port = int(fake_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{" % (40 << 20))
        head = sock.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 413 "), head
    assert head.endswith('{"error":"http: request body too large"}') or "content-length: 40" in head.lower()


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat", "/api/embed", "/api/show", "/api/create",
                                  "/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
def test_bodies_over_the_limit(fake_url, small_limit, path):
    _too_large(HTTP.post(fake_url + path, content=b" " * (3 << 20), timeout=30))  # /v1: OpenAI's envelope

    def chunked():  # no Content-Length: the cap is counted while reading
        for _ in range(48):
            yield b" " * (64 << 10)

    _too_large(HTTP.post(fake_url + path, content=chunked(), timeout=30))
    assert HTTP.head(fake_url + "/").status_code == 200


def test_bodies_under_the_limit(fake_url, small_limit):
    body = {"model": "tiny", "prompt": "x" * (900 << 10), "stream": False}
    assert HTTP.post(fake_url + "/api/generate", json=body, timeout=30).status_code == 200


def test_blob_uploads_are_not_capped(tmp_path, small_limit):
    store, app = store_app(tmp_path)
    data = os.urandom(3 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with app_in_thread(app) as url:
        assert HTTP.post(url + "/api/blobs/" + digest, content=data, timeout=60).status_code == 201
    assert store.has_blob(digest)


# -- the API key on every route -----------------------------------------------------------------

def _concrete(path: str) -> str:
    return path.replace("{digest}", "sha256:" + "0" * 64).replace("{model:path}", "tiny")


def test_api_key_guards_every_route(monkeypatch):
    monkeypatch.setenv("VLLAMA_API_KEY", "k3y")
    runner = FakeRunner()
    app = fake_app(runner, names=["tiny:latest"])
    routes = [r for r in app.routes if isinstance(r, Route)]
    assert len(routes) >= 20
    with app_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for route in routes:
            for method in sorted(route.methods | {"POST", "DELETE", "PUT", "OPTIONS"}):
                for auth in (None, "Bearer nope", "k3y", "Basic k3y", "Bearer k3y2"):
                    headers = {"Authorization": auth} if auth else {}
                    r = client.request(method, _concrete(route.path), headers=headers,
                                       json={"model": "tiny", "prompt": "x", "name": "tiny"})
                    assert r.status_code == 401, (method, route.path, auth, r.status_code)
                    if method != "HEAD":
                        assert r.json() == {"error": "unauthorized"}
        for path in ("/nowhere", "/api/../api/tags", "/v1/models/../../x"):  # no route enumeration either
            assert client.get(path).status_code == 401
        assert runner.requests == []  # nothing reached the engine
        ok = {"Authorization": "Bearer k3y"}
        assert client.get("/api/version", headers=ok).status_code == 200
        assert client.post("/api/generate", headers=ok, json={"model": "tiny", "prompt": "x"}).status_code == 200


# -- no path out of the store -------------------------------------------------------------------

TRAVERSAL = st.sampled_from([
    "..", "../", "../..", "../../etc/passwd", "/etc/passwd", "//etc", "a/../../b", "./x", "x/.", "x//y",
    "..\\..\\x", "%2e%2e/%2e%2e", "\0", "a\0b", "victim", "../victim", "../../outside/secret",
    "registry.ollama.ai/../../../outside/secret", "blobs/../../outside", "sha256-" + "0" * 64,
    "sha256:" + "../" * 10, "sha256-" + "a" * 63 + "/", "~", "~root", "C:/x", "x" * 300,
]) | st.lists(st.sampled_from(["..", ".", "", "a", "outside", "secret", "blobs", "manifests", "\0", "~"]),
              min_size=1, max_size=6).map("/".join) | st.text(max_size=40)


def _tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_file():
            out[key] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def fenced(tmp_path_factory):
    """A store under `<tmp>/models`, files beside it that nothing may touch, and the app."""
    root = tmp_path_factory.mktemp("fence")
    (root / "outside").mkdir()
    (root / "outside" / "secret").write_text("do not read or delete")
    (root / "victim").write_text("do not overwrite")
    store, app = store_app(root)
    digest = store.add_blob(write_tiny_model(root / "src") / "config.json")
    outside = {k: v for k, v in _tree(root).items() if not k.startswith(("models", "src"))}
    with app_in_thread(app) as url:
        yield root, store, url, digest, outside


def _check_fence(root: Path, store: ModelStore, outside: dict) -> None:
    now = {k: v for k, v in _tree(root).items() if not k.startswith(("models", "src"))}
    assert now == outside, "something outside the store changed"
    real_root = store.root.resolve()
    for path in store.root.rglob("*"):
        target = path.resolve()
        assert target == real_root or real_root in target.parents, f"{path} leads out of the store: {target}"


@SETTINGS
@given(text=TRAVERSAL)
def test_names_digests_and_paths_stay_in_the_store(fenced, text):
    root, store, url, digest, outside = fenced
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = [
            client.post("/api/show", json={"model": text}),
            client.request("DELETE", "/api/delete", json={"model": text}),
            client.post("/api/copy", json={"source": "tiny", "destination": text}),
            client.post("/api/copy", json={"source": text, "destination": "copy-of"}),
            client.post("/api/create", json={"model": "made", "stream": False,
                                             "files": {"config.json": digest, text: digest}}),
            client.post("/api/create", json={"model": "made2", "stream": False, "files": {text: digest}}),
            client.post("/api/create", json={"model": "made3", "stream": False, "files": {"config.json": text}}),
            client.post("/api/pull", json={"model": text, "stream": False}),
            client.get("/v1/models/" + quote(text.encode("utf-8", "surrogatepass"), safe="/")),
        ]
        for method in ("HEAD", "POST"):
            answers.append(client.request(method, "/api/blobs/" + quote(text.encode("utf-8", "surrogatepass"),
                                                                        safe=""), content=b"{}"))
        for r in answers:
            assert r.status_code < 500 or r.json()["error"].startswith("pull model manifest"), r.text
            if r.status_code == 200 and r.request.url.path == "/api/show":
                assert "do not" not in r.text
        _check_fence(root, store, outside)
        assert client.post("/api/show", json={"model": "tiny"}).status_code == 200


def test_snapshots_link_only_to_blobs(fenced):
    root, store, url, digest, outside = fenced
    for model in store.list():
        for path in model.path.rglob("*"):
            if path.is_file():
                assert path.resolve().parent == store.blobs_dir.resolve(), path


# -- remote code --------------------------------------------------------------------------------

def _captured_kwargs(tmp_path: Path, monkeypatch, env: dict[str, str], flags: dict | None = None) -> dict:
    """The engine arguments `vllama serve` would load a model whose config has an auto_map with."""
    import vllama.engine.args as args
    from vllama.engine.runner import VllmRunner
    from vllama.server import build

    for key in ("VLLAMA_TRUST_REMOTE_CODE", "VLLAMA_ENGINE_ARGS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(args, "on_gpu", lambda: False)
    captured: dict = {}

    def start(cls, kwargs):  # the arguments are all this needs: stop before an engine would exist
        captured.update(kwargs)
        raise _Captured

    monkeypatch.setattr(VllmRunner, "start", classmethod(start))
    config = {**CONFIG, "auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"},
              "trust_remote_code": True}
    folder = write_tiny_model(tmp_path / "evil", config=config, extra={"modeling_evil.py": b"import os"})
    store = ModelStore(tmp_path / "models")
    store.create_from_folder("evil", folder)
    app = build(args.EngineSettings.from_env(flags or {}), store=store)
    with pytest.raises(_Captured):
        app.state.scheduler._start_runner(store.get("evil"))
    return captured


class _Captured(Exception):
    """Raised by the stand-in VllmRunner.start once it has the engine arguments."""


def test_remote_code_is_off_even_when_the_model_asks(tmp_path, monkeypatch):
    kwargs = _captured_kwargs(tmp_path, monkeypatch, {})
    assert kwargs["trust_remote_code"] is False
    store = ModelStore(tmp_path / "models")
    assert not any(f["path"].endswith(".py") for f in store.get("evil").files)  # never stored either
    assert not is_model_file("modeling_evil.py") and not is_model_file("configuration_x.py")


@pytest.mark.parametrize("env, flags", [({"VLLAMA_TRUST_REMOTE_CODE": "1"}, None),
                                        ({"VLLAMA_ENGINE_ARGS": '{"trust_remote_code": true}'}, None),
                                        ({}, {"trust_remote_code": True})])
def test_remote_code_only_when_the_operator_says_so(tmp_path, monkeypatch, env, flags):
    assert _captured_kwargs(tmp_path, monkeypatch, env, flags)["trust_remote_code"] is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off", ""])
def test_remote_code_flag_off_values(tmp_path, monkeypatch, value):
    assert _captured_kwargs(tmp_path, monkeypatch, {"VLLAMA_TRUST_REMOTE_CODE": value})["trust_remote_code"] is False


# -- DNS rebinding in front of the routes that change things -------------------------------------

def test_rebinding_cannot_delete_pull_or_generate(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.create_from_folder("tiny", write_tiny_model(tmp_path / "src"))
    runner = FakeRunner()
    app = build_app(store, Scheduler(lambda m: runner, check_every=0.05), keep_alive=300.0, bind_host="127.0.0.1")
    evil = {"Host": "attacker.example:11434"}
    with app_in_thread(app) as url:
        for method, path, body in (("DELETE", "/api/delete", {"model": "tiny"}),
                                   ("POST", "/api/copy", {"source": "tiny", "destination": "x"}),
                                   ("POST", "/api/create", {"model": "y", "from": "tiny"}),
                                   ("POST", "/api/pull", {"model": "tiny"}),
                                   ("POST", "/api/generate", {"model": "tiny", "prompt": "x"}),
                                   ("POST", "/v1/chat/completions", {"model": "tiny", "messages": []}),
                                   ("POST", "/api/blobs/sha256:" + "0" * 64, {})):
            r = HTTP.request(method, url + path, json=body, headers=evil)
            assert (r.status_code, r.content) == (403, b""), path
            r = HTTP.request(method, url + path, json=body, headers={**evil, "Origin": "http://attacker.example"})
            assert r.status_code == 403, path
    assert [m.name for m in store.list()] == ["tiny:latest"] and runner.requests == []


@pytest.fixture(scope="module")
def loopback_url():
    """An app bound (as far as it knows) to 127.0.0.1: the Host check is on."""
    app = build_app(ModelStore(Path("/nonexistent")), Scheduler(lambda m: FakeRunner()), keep_alive=300.0,
                    bind_host="127.0.0.1")
    with app_in_thread(app) as url:
        yield url


@pytest.mark.parametrize("host", ["8.8.8.8:11434", "[2001:4860::8888]:11434", "[::ffff:8.8.8.8]", "127.0.0.1.nip.io",
                                  "localhost.attacker.example", "0x7f000001", "127.1", "2130706433", "localhost.",
                                  "attacker.example:127.0.0.1", "[::1].attacker.example", "[127.0.0.1]x.example",
                                  "LOCALHOST.ATTACKER.COM"])
def test_rebinding_host_spellings_refused(loopback_url, host):
    # `[::1].attacker.example` once passed as ::1: Go's SplitHostPort refuses it, and Ollama with it
    r = HTTP.get(loopback_url + "/api/version", headers={"Host": host})
    assert (r.status_code, r.content) == (403, b""), host


@SETTINGS
@given(host=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=60))
def test_any_host_header_is_a_200_or_a_403(loopback_url, host):
    with httpx.Client(timeout=10) as client:
        r = client.get(loopback_url + "/api/version", headers={"Host": host})
    assert r.status_code in (200, 400, 403), (host, r.status_code)  # 400: uvicorn refusing a malformed Host
