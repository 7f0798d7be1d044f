"""The recorded Ollama exchanges (reference/ollama-golden/*.txt): the curl command and what came back."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

RECORDED_MODEL = "smollm2:135m"  # the one model the recordings were made with
ENV_DIR = "VLLAMA_GOLDEN_DIR"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    stream: bool = False  # curl -N: read the answer as it comes (the recording is a stream)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class Golden:
    name: str  # the file name without .txt, e.g. "08-generate-stream-true"
    request: Request
    response: Response

    @property
    def key(self) -> str:
        """The number in front of the name: "08", "14d"."""
        return self.name.split("-", 1)[0]


def parse_curl(command: str) -> Request:
    """`curl -sS -i [-I] [-N] [-X M] [-H 'K: V']... [-d BODY] URL` as a request."""
    args = shlex.split(command)
    if args[:1] != ["curl"]:
        raise ValueError(f"not a curl command: {command[:40]}")
    method, headers, body, url, stream = None, {}, None, None, False
    it = iter(args[1:])
    for arg in it:
        if arg == "-I":
            method = "HEAD"
        elif arg == "-N":
            stream = True
        elif arg == "-X":
            method = next(it)
        elif arg == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            body = next(it).encode()
        elif arg.startswith("-"):
            continue  # -sS, -i: output options
        else:
            url = arg
    if url is None:
        raise ValueError("curl command without a URL")
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if method is None:
        method = "POST" if body is not None else "GET"
    return Request(method, path or "/", headers, body, stream)


def parse_response(text: str) -> Response:
    """Status line, headers, a blank line, the body exactly as received."""
    head, _, body = text.partition("\r\n\r\n") if "\r\n\r\n" in text else text.partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, body.encode())


def parse_file(path: Path) -> Golden:
    text = path.read_text()
    command, rest = text.split("\n----\n", 1)
    # The body runs up to the closing `\n----\n# curl exit code` line.
    answer = rest.rsplit("\n----\n", 1)[0]
    return Golden(path.stem, parse_curl(command.removeprefix("$ ").strip()), parse_response(answer))


def find_dir(explicit: str | Path | None = None) -> Path | None:
    """--golden, else $VLLAMA_GOLDEN_DIR, else shared/reference/ollama-golden next to or in the checkout."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    repo = Path(__file__).resolve().parents[1]
    for base in (repo, repo.parent):
        candidate = base / "shared" / "reference" / "ollama-golden"
        if candidate.is_dir():
            return candidate
    return None


def load(directory: Path) -> dict[str, Golden]:
    """Every recording in the folder, by its number ("01", "14d", ...), in file order."""
    goldens = [parse_file(p) for p in sorted(directory.glob("*.txt"))]
    return {g.key: g for g in goldens}
