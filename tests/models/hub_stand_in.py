"""A local stand-in for the Hugging Face Hub: just what `pull` calls, on 127.0.0.1.

    GET  /api/models/{org}/{repo}[/revision/{rev}]?blobs=true   repo info with file sizes, LFS sha256
    GET|HEAD /{org}/{repo}/resolve/{rev}/{path}                 small files; LFS files redirect to /cdn
    GET|HEAD /cdn/{sha256}                                      LFS content, with Range support

Headers follow the Hub's: X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, X-Error-Code.
Knobs for tests: `delay` (seconds per `chunk` bytes sent), `drop_after` (path -> bytes after which
the first response for that file is cut), `requests` (a log of (method, path, Range header)).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".onnx")


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)


@dataclass
class HubStandIn:
    repos: dict[str, Repo] = field(default_factory=dict)
    delay: float = 0.0
    chunk: int = 64 * 1024
    drop_after: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""

    def add_folder(self, repo_id: str, folder: Path, **kwargs) -> Repo:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.repos[repo_id] = Repo(files, **kwargs)
        return self.repos[repo_id]

    def blob(self, sha256: str) -> tuple[str, bytes] | None:
        """(repo path, content) of an LFS file with this sha256."""
        for repo in self.repos.values():
            for path, data in repo.files.items():
                if repo.is_lfs(path) and hashlib.sha256(data).hexdigest() == sha256:
                    return path, data
        return None

    def start(self) -> HubStandIn:
        stand_in = self

        class Handler(_Handler):
            hub = stand_in

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def gets(self, suffix: str) -> list[str | None]:
        """The Range header of every GET whose path ends with `suffix`."""
        return [r for method, path, r in self.requests if method == "GET" and path.endswith(suffix)]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients hang up mid-download on purpose in these tests


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn
    protocol_version = "HTTP/1.1"
    # A response's head and body are two writes: with Nagle's algorithm the body waits ~40 ms for the
    # client's delayed ACK (a real server sets TCP_NODELAY, as Ollama's Go server does).
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(("HEAD" if head else "GET", path, self.headers.get("Range")))
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            return self._info(m.group(1), m.group(2) or "main")
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self._resolve(m.group(1), m.group(2), m.group(3), head)
        if m := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            found = self.hub.blob(m.group(1))
            if found is None:
                return self._error(404, "EntryNotFound", "no such blob")
            return self._send_file(found[1], found[0], head, {"ETag": f'"{m.group(1)}"'})
        self._error(404, None, "not found")

    def _repo(self, repo_id: str, revision: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        elif repo.gated:
            status = 403 if self.headers.get("Authorization") else 401
            self._error(status, "GatedRepo", f"Access to model {repo_id} is restricted.")
        elif revision not in ("main", repo.sha):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        else:
            return repo
        return None

    def _info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        siblings = []
        for path, data in repo.files.items():
            entry = {"rfilename": path, "size": len(data), "blobId": git_oid(data)}
            if repo.is_lfs(path):
                entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            siblings.append(entry)
        body = json.dumps({"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
                           "siblings": siblings}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def _resolve(self, repo_id: str, revision: str, file: str, head: bool) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        data = repo.files.get(file)
        if data is None:
            return self._error(404, "EntryNotFound", f"{file} does not exist")
        headers = {"X-Repo-Commit": repo.sha}
        if repo.is_lfs(file):
            sha = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{git_oid(data)}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                            "Location": f"/cdn/{sha}", "Content-Length": "0"})
            self.send_response(302)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            return
        headers["ETag"] = f'"{git_oid(data)}"'
        self._send_file(data, file, head, headers)

    def _send_file(self, data: bytes, key: str, head: bool, headers: dict[str, str]) -> None:
        start = 0
        if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
            start = int(m.group(1))
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        part = data[start:]
        self.send_response(206 if start else 200)
        headers = {**headers, "Content-Length": str(len(part)), "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        limit = self.hub.drop_after.pop(key, None)
        sent = 0
        while sent < len(part):
            piece = part[sent:sent + self.hub.chunk]
            if limit is not None and start + sent + len(piece) > limit:
                self.wfile.write(piece[: max(limit - start - sent, 0)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # cut mid-body, like a dropped connection
                return
            self.wfile.write(piece)
            self.wfile.flush()
            sent += len(piece)
            if self.hub.delay:
                time.sleep(self.hub.delay)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"Content-Type": "application/json"}
        if code:
            headers["X-Error-Code"] = code
            headers["X-Error-Message"] = message
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
