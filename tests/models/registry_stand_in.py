"""A local stand-in for Ollama's registry (registry.ollama.ai): just what `pull` calls, on 127.0.0.1.

    GET /v2/{namespace}/{model}/manifests/{tag}   the manifest, for Ollama's Accept header only
    GET /v2/{namespace}/{model}/blobs/{digest}    a 307 to /cdn/{digest}, as the real one redirects
    GET /cdn/{digest}                             the blob, with Range support

Models come from an Ollama models folder (`add_store`) or are assembled from layers (`add_model`).
Knobs for tests: `drop_after` (digest -> bytes after which the first response is cut),
`corrupt` (digests served with a flipped byte), `requests` (a log of (path, Range header)).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class RegistryStandIn:
    manifests: dict[str, bytes] = field(default_factory=dict)  # "namespace/model:tag" (lower case) -> bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""

    def add_model(self, name: str, layers: list[tuple[str, bytes]], config: dict) -> bytes:
        """`library/x:tag` from (kind, bytes) layers, e.g. ("model", gguf); returns the manifest bytes."""
        config_raw = json.dumps(config, separators=(",", ":")).encode()
        self.blobs[digest_of(config_raw)] = config_raw
        entries = []
        for kind, data in layers:
            self.blobs[digest_of(data)] = data
            entries.append({"mediaType": f"application/vnd.ollama.image.{kind}", "digest": digest_of(data),
                            "size": len(data)})
        raw = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                          "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                     "digest": digest_of(config_raw), "size": len(config_raw)},
                          "layers": entries}, separators=(",", ":")).encode()
        self.manifests[name.lower()] = raw
        return raw

    def add_store(self, root: Path) -> None:
        """Serve every model of an Ollama models folder, its manifests byte for byte."""
        for path in sorted((root / "manifests").glob("*/*/*/*")):
            _, namespace, model, tag = path.relative_to(root / "manifests").parts
            self.manifests[f"{namespace}/{model}:{tag}".lower()] = path.read_bytes()
        for blob in (root / "blobs").iterdir():
            self.blobs[blob.name.replace("-", ":", 1)] = blob.read_bytes()

    def start(self) -> RegistryStandIn:
        registry = self

        class Handler(_Handler):
            pass

        Handler.registry = registry
        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()  # stops in 0.05 s
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up mid-blob


class _Handler(BaseHTTPRequestHandler):
    registry: RegistryStandIn
    protocol_version = "HTTP/1.1"
    # A response's head and body are two writes: with Nagle's algorithm the body waits ~40 ms for the
    # client's delayed ACK (a real server sets TCP_NODELAY, as Ollama's Go server does).
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.registry.requests.append((path, self.headers.get("Range")))
        if m := re.fullmatch(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)", path):
            return self._manifest(f"{m.group(1)}/{m.group(2)}:{m.group(3)}".lower())
        if m := re.fullmatch(r"/v2/[^/]+/[^/]+/blobs/(sha256:[0-9a-f]{64})", path):
            if m.group(1) not in self.registry.blobs:
                return self._json(404, {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
            return self._send(307, b"", {"Location": f"/cdn/{m.group(1)}"})
        if m := re.fullmatch(r"/cdn/(sha256:[0-9a-f]{64})", path):
            return self._blob(m.group(1))
        self._json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    def _manifest(self, key: str) -> None:
        raw = self.registry.manifests.get(key)
        if raw is None:
            return self._json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
        if MANIFEST_TYPE not in (self.headers.get("Accept") or ""):
            return self._json(406, {"errors": [{"code": "UNSUPPORTED", "message": "accept a v2 manifest"}]})
        self._send(200, raw, {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": digest_of(raw)})

    def _blob(self, digest: str) -> None:
        data = self.registry.blobs[digest]
        if digest in self.registry.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
            start = int(m.group(1))
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        part = data[start:]
        headers = {"Content-Length": str(len(part)), "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(206 if start else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        limit = self.registry.drop_after.pop(digest, None)
        if limit is not None and start + len(part) > limit:
            self.wfile.write(part[: max(limit - start, 0)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # cut mid-body, like a dropped connection
            return
        self.wfile.write(part)

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
