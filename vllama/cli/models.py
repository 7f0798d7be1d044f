"""Model commands: pull, list, ps, show, rm, cp, stop, create, and the version check."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import client_url
from .display import ProgressView, human_bytes, human_time, parse_time, show_info, table
from .http import CLIError, Client, ResponseError, connect
from .modelfile import Modelfile, read_modelfile

PULL_NOT_FOUND = "pull model manifest: file does not exist"


# -- pull -----------------------------------------------------------------------------------------

def follow(client: Client, path: str, body: dict[str, Any], view: ProgressView) -> None:
    """Draw a pull's or create's progress stream; it must end with `success` (an error line raises)."""
    last = None
    for event in client.stream(path, body):
        view.update(event)
        last = event.get("status")
    view.finish_bars()
    if last != "success":
        raise CLIError("the server stopped before it finished")


def pull_model(client: Client, name: str, insecure: bool = False) -> None:
    """POST /api/pull and draw its progress; an error line becomes a CLIError with the server's text."""
    with ProgressView() as view:
        follow(client, "/api/pull", {"model": name, "insecure": insecure, "stream": True}, view)


def cmd_pull(args: argparse.Namespace) -> None:
    client = connect()
    pull_model(client, args.model, args.insecure)


# -- list, ps -------------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> None:
    models = connect().json("GET", "/api/tags").get("models") or []
    rows = []
    for m in models:
        name = str(m.get("name") or m.get("model") or "")
        if args.filter and not any(name.startswith(f) for f in args.filter):
            continue
        rows.append([name, str(m.get("digest", ""))[:12], human_bytes(int(m.get("size") or 0)),
                     human_time(parse_time(m.get("modified_at")))])
    print(table(rows, ["NAME", "ID", "SIZE", "MODIFIED"]))


def processor(size: int, size_vram: int) -> str:
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def cmd_ps(args: argparse.Namespace) -> None:
    models = connect(autostart=False).json("GET", "/api/ps").get("models") or []
    rows = []
    for m in models:
        size, vram = int(m.get("size") or 0), int(m.get("size_vram") or 0)
        expires = parse_time(m.get("expires_at"))
        until = human_time(expires, "Never")
        if expires is not None and until.endswith(" ago"):
            until = "Stopping..."
        rows.append([str(m.get("name") or m.get("model") or ""), str(m.get("digest", ""))[:12], human_bytes(size),
                     processor(size, vram), str(m.get("context_length") or ""), until])
    print(table(rows, ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]))


# -- show -----------------------------------------------------------------------------------------

SHOW_FIELDS = ("license", "modelfile", "parameters", "template", "system")


def cmd_show(args: argparse.Namespace) -> None:
    resp = connect().json("POST", "/api/show", {"model": args.model, "verbose": bool(args.verbose)})
    for name in SHOW_FIELDS:
        if getattr(args, name):
            print(resp.get(name, ""))
            return
    sys.stdout.write(show_info(resp, verbose=args.verbose))


# -- rm, cp, stop ---------------------------------------------------------------------------------

def unload(client: Client, name: str) -> None:
    """Ollama's unload shortcut: generate with no prompt and keep_alive 0."""
    client.json("POST", "/api/generate", {"model": name, "keep_alive": 0})


def cmd_rm(args: argparse.Namespace) -> None:
    client = connect()
    for name in args.models:
        try:
            unload(client, name)
        except ResponseError as err:
            if "not found" not in err.message.lower():
                print(f"Warning: unable to stop model '{name}'", file=sys.stderr)
        client.request("DELETE", "/api/delete", {"name": name})
        print(f"deleted '{name}'")


def cmd_cp(args: argparse.Namespace) -> None:
    connect().request("POST", "/api/copy", {"source": args.source, "destination": args.destination})
    print(f"copied '{args.source}' to '{args.destination}'")


def cmd_stop(args: argparse.Namespace) -> None:
    client = connect(autostart=False)
    try:
        unload(client, args.model)
    except ResponseError as err:
        if "not found" in err.message:
            raise CLIError(f'couldn\'t find model "{args.model}" to stop') from None
        raise


# -- create ---------------------------------------------------------------------------------------

def _local_files(folder: Path) -> list[tuple[str, Path]]:
    """The files of a Hugging Face folder that a model needs (no hidden files, no .bin/.gguf copies)."""
    from ..models.store import is_model_file

    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue
        if is_model_file(rel):
            files.append((rel, path))
    if not any(rel == "config.json" for rel, _ in files):
        raise CLIError(f"{folder} has no config.json: give a Hugging Face model folder or a .gguf file")
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _upload(client: Client, path: Path, digest: str, view: ProgressView) -> None:
    """HEAD the blob; POST it with a progress bar when the server lacks it."""
    try:
        client.request("HEAD", f"/api/blobs/{digest}")
        return
    except ResponseError as err:
        if err.status != 404:
            raise
    size = path.stat().st_size
    status = f"copying file {digest}"
    view.update({"status": status, "digest": digest, "total": size, "completed": 0})

    def body() -> Iterator[bytes]:
        sent = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sent += len(chunk)
                yield chunk
                view.update({"status": status, "digest": digest, "total": size, "completed": sent})

    client.request("POST", f"/api/blobs/{digest}", content=body(), headers={"Content-Length": str(size)})


def upload_files(client: Client, source: Path, view: ProgressView) -> dict[str, str]:
    """{relative path: digest} for /api/create, every blob present on the server."""
    if source.is_dir():
        files = _local_files(source)
    elif source.suffix.lower() == ".gguf":
        files = [(source.name, source)]
    else:
        raise CLIError(f"{source}: expected a Hugging Face model folder or a .gguf file")
    view.update({"status": "gathering model components"})
    out = {}
    for rel, path in files:
        digest = _sha256(path)
        _upload(client, path, digest, view)
        out[rel] = digest
    view.finish_bars()
    return out


def _source_path(text: str, base: Path) -> Path | None:
    """A FROM/--from value that names a file or folder on this machine, else None (a model name)."""
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = base / path
    return path if path.exists() else None


def cmd_create(args: argparse.Namespace) -> None:
    if args.quantize:
        raise CLIError("quantize is not supported: vllama serves the weights as they are")
    if args.source:
        mf, base = Modelfile(source=args.source), Path.cwd()
    else:
        path = Path(args.file) if args.file else Path("Modelfile")
        if not args.file and not path.exists():
            raise CLIError("no Modelfile here: give one with -f, or the model to build from with --from")
        try:
            mf = read_modelfile(path)
        except ValueError as err:
            raise CLIError(str(err)) from None
        base = path.resolve().parent
    assert mf.source is not None
    client = connect()
    body: dict[str, Any] = {"model": args.model, "stream": True, **mf.request_fields()}
    local = _source_path(mf.source, base)
    with ProgressView() as view:
        if local is not None:
            body["files"] = upload_files(client, local, view)
        else:
            body["from"] = mf.source
        follow(client, "/api/create", body, view)


# -- version --------------------------------------------------------------------------------------

def print_version() -> None:
    print(f"vllama version is {__version__}")
    try:
        client = connect(autostart=False)
        server = client.json("GET", "/api/version").get("version", "unknown")
    except CLIError:
        print(f"Warning: could not connect to a running vllama server at {client_url()}", file=sys.stderr)
        return
    print(f"server at {client.base_url} speaks the Ollama API of version {server}")
