"""list, show, create, cp and rm through the CLI (in this process) against a server of this module's:
`vllama serve`'s app in a thread, on its own copy of the session's models. Nothing here generates,
so nothing here needs the session's engine server."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.cli.conftest import SHORT, SHORT_PREDICT, assert_one_error_line, cli, cli_env, short_model_on
from tests.cli.servers import copy_store, serve_in_thread
from tests.conftest import SMOL, TINY
from tests.live_server import app_in_thread
from tests.models.fake_repo import write_tiny_model

HEX12 = r"[0-9a-f]{12}"


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory) -> Iterator[str]:
    """This module's server (in place of the session's): `tiny`, `smollm2:135m` and `all-minilm`, on
    a copy of the session's store that the tests here create models in and remove them from."""
    with serve_in_thread(copy_store(models_dir, tmp_path_factory.mktemp("cli-models") / "models")) as url:
        yield url


@pytest.fixture(scope="module")
def short_model(server, tmp_path_factory) -> Iterator[str]:
    """SHORT on this module's server, made by `vllama create` from ./Modelfile."""
    with short_model_on(server, tmp_path_factory.mktemp("cli-short"), run=cli) as name:
        yield name


def rows(stdout: str) -> dict[str, list[str]]:
    """A table printed by list/ps, as {first column: [columns]}; columns split on runs of 2+ spaces."""
    lines = stdout.rstrip("\n").splitlines()
    return {cols[0]: cols for cols in (re.split(r" {2,}", line.strip()) for line in lines[1:])}


def test_list_is_ollamas_table(env, server):
    result = cli("list", env=env)
    assert result.returncode == 0 and result.stderr == ""
    header, *_ = result.stdout.splitlines()
    assert re.fullmatch(r"NAME +ID +SIZE +MODIFIED", header)
    table = rows(result.stdout)
    tags = {m["name"]: m for m in httpx.get(server + "/api/tags").json()["models"]}
    for name in ("tiny:latest", SMOL):
        assert name in table
        _, ident, size, modified = table[name]
        assert ident == tags[name]["digest"][:12] and re.fullmatch(HEX12, ident)
        assert re.fullmatch(r"\d+(\.\d)? (B|KB|MB|GB)", size)
        assert modified.endswith(" ago")
    assert table[SMOL][2] == "541 MB"
    # all columns start where the header's do
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    for line in result.stdout.splitlines()[1:]:
        assert all(line[s - 1] == " " and line[s] != " " for s in starts[1:])


def test_list_filter_and_alias(env):
    result = cli("ls", "smol", env=env)
    assert result.returncode == 0
    assert list(rows(result.stdout)) == [SMOL]


def test_show_model_details(env):
    result = cli("show", TINY, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:7] == [
        "  Model",
        "    architecture        llama",
        lines[2],
        "    context length      2048",
        "    embedding length    64",
        "    quantization        F32",
        "",
    ]
    assert re.fullmatch(r"    parameters {10}\d+(\.\d+)?[KMB]", lines[2])
    assert lines[7:10] == ["  Capabilities", "    completion", ""]
    assert "  Parameters" in lines and '    stop    "<|im_end|>"' in lines


def test_show_real_model(env):
    out = cli("show", SMOL, env=env).stdout
    assert "    parameters          134.52M" in out and "    context length      8192" in out
    assert "    embedding length    576" in out


def test_show_fields(env, server, short_model):
    shown = httpx.post(server + "/api/show", json={"model": short_model}).json()
    for flag in ("parameters", "template", "system", "modelfile"):
        result = cli("show", short_model, f"--{flag}", env=env)
        assert result.returncode == 0 and result.stdout == shown[flag] + "\n"
    assert f"num_predict                    {SHORT_PREDICT}" in shown["parameters"]
    assert shown["system"] == "You answer briefly."
    verbose = cli("show", TINY, "-v", env=env).stdout
    assert "  Metadata" in verbose and re.search(r"    llama\.block_count +2\n", verbose)
    assert "  Tensors" in verbose and "model.embed_tokens.weight" in verbose


def test_create_from_an_existing_model_and_remove_it(env):
    result = cli("create", "cli-from", "--from", TINY, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert all(re.fullmatch(r"using existing layer sha256:[0-9a-f]{64}", line) for line in lines[:-2])
    assert lines[-2:] == ["writing manifest", "success"]
    assert "cli-from:latest" in rows(cli("list", env=env).stdout)
    removed = cli("rm", "cli-from", env=env)
    assert removed.returncode == 0 and removed.stdout == "deleted 'cli-from'\n"
    assert "cli-from:latest" not in rows(cli("list", env=env).stdout)


def test_create_uploads_a_local_folder(env, tmp_path, server):
    folder = write_tiny_model(tmp_path / "my-model", rows=1234,
                              extra={"pytorch_model.bin": b"\0" * 64, ".git/HEAD": b"ref", "README.md": b"# hi\n"})
    weights = "sha256:" + hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    result = cli("create", "cli-folder", "--from", str(folder), env=env)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert err.startswith("gathering model components\n")
    assert re.search(rf"copying file {weights} +100%", err)  # uploaded, with a bar
    assert "pytorch_model.bin" not in err and err.endswith("writing manifest\nsuccess\n")
    assert httpx.head(f"{server}/api/blobs/{weights}").status_code == 200
    shown = httpx.post(server + "/api/show", json={"model": "cli-folder"}).json()
    assert {t["name"] for t in shown["tensors"]} >= {"model.embed_tokens.weight"}
    again = cli("create", "cli-folder:v2", "--from", str(folder), env=env)
    assert again.returncode == 0 and "copying file" not in again.stderr  # the server has every blob
    assert cli("rm", "cli-folder", "cli-folder:v2", env=env).stdout == \
        "deleted 'cli-folder'\ndeleted 'cli-folder:v2'\n"


def test_create_from_a_folder_without_config(env, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_error_line(cli("create", "x", "--from", str(tmp_path / "empty"), env=env), "has no config.json")


def test_create_needs_a_source(env, tmp_path):
    assert_one_error_line(cli("create", "x", env=env, cwd=tmp_path), "no Modelfile here")
    (tmp_path / "Modelfile").write_text("FROM tiny\nADAPTER ./lora\n")
    assert_one_error_line(cli("create", "x", "-f", str(tmp_path / "Modelfile"), env=env),
                          "ADAPTER is not supported")


def test_cp_and_rm(env):
    copied = cli("cp", TINY, "cli-cp:v1", env=env)
    assert copied.returncode == 0 and copied.stdout == f"copied '{TINY}' to 'cli-cp:v1'\n"
    table = rows(cli("list", env=env).stdout)
    assert "cli-cp:v1" in table
    assert cli("rm", "cli-cp:v1", env=env).stdout == "deleted 'cli-cp:v1'\n"
    assert_one_error_line(cli("rm", "cli-cp:v1", env=env), "model 'cli-cp:v1' not found")


class Recorder:
    """A stand-in server that records what `create` sends: blob HEAD/POST, then /api/create."""

    def __init__(self):
        self.calls: list[tuple[str, str, bytes]] = []
        self.blobs: set[str] = set()
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def root(request: Request) -> Response:
            return Response("Ollama is running")

        async def blob(request: Request) -> Response:
            digest = request.path_params["digest"]
            body = await request.body()
            self.calls.append((request.method, request.url.path, body))
            if request.method == "HEAD":
                return Response(status_code=200 if digest in self.blobs else 404)
            self.blobs.add(digest)
            return Response(status_code=201)

        async def create(request: Request) -> Response:
            body = await request.body()
            self.calls.append(("POST", "/api/create", body))

            async def lines():
                yield b'{"status":"parsing GGUF"}\n'
                yield b'{"status":"success"}\n'

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        async def error(request: Request) -> Response:
            return JSONResponse({"error": "unexpected"}, status_code=500)

        return Starlette(routes=[Route("/", root, methods=["GET", "HEAD"]),
                                 Route("/api/blobs/{digest}", blob, methods=["HEAD", "POST"]),
                                 Route("/api/create", create, methods=["POST"]),
                                 Route("/api/{rest:path}", error, methods=["GET", "POST", "DELETE"])])


def test_create_from_a_gguf_sends_the_file_as_one_blob(tmp_path, home):
    gguf = tmp_path / "weights" / "Tiny-Q8_0.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 40)
    digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    recorder = Recorder()
    with app_in_thread(recorder.app()) as url:
        (tmp_path / "Modelfile").write_text(f"FROM ./weights/{gguf.name}\nPARAMETER num_ctx 512\nSYSTEM Be kind.\n")
        result = cli("create", "g", "-f", str(tmp_path / "Modelfile"), env=cli_env(url, home))
    assert result.returncode == 0, result.stderr
    assert [(m, p) for m, p, _ in recorder.calls] == [
        ("HEAD", f"/api/blobs/{digest}"), ("POST", f"/api/blobs/{digest}"), ("POST", "/api/create")]
    assert recorder.calls[1][2] == gguf.read_bytes()
    assert json.loads(recorder.calls[2][2]) == {
        "model": "g", "stream": True, "parameters": {"num_ctx": 512}, "system": "Be kind.",
        "files": {gguf.name: digest},
    }
    assert result.stderr.splitlines()[-2:] == ["parsing GGUF", "success"]


def test_short_model_is_listed(env, short_model):
    assert SHORT in rows(cli("list", env=env).stdout)
