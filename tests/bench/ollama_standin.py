#!/usr/bin/env python3
"""A stand-in for the `ollama` program, for the bench's launcher tests (standard library only).

    ollama_standin.py serve                  listens on OLLAMA_HOST; models registered under OLLAMA_MODELS
    ollama_standin.py create NAME -f FILE    registers FILE's `FROM` GGUF as NAME with that server
    ollama_standin.py --version

The server answers /, /api/version, /api/create, /api/show, /api/ps, and /api/generate and /api/chat
streaming NDJSON with Ollama's fields (created_at, the final chunk's done_reason and six metrics).
A model loads on its first request into a "runner" child process, as Ollama's does; `keep_alive: 0`
unloads it. On SIGTERM the server exits and leaves its runner behind: stopping the whole process
group is the launcher's job. Its log (stdout) names its settings and every runner it starts.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = "0.0.0-standin"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _registry() -> Path:
    return Path(os.environ["OLLAMA_MODELS"]) / "standin-models.json"


def _models() -> dict[str, str]:
    path = _registry()
    return json.loads(path.read_text()) if path.exists() else {}


def _full(name: str) -> str:
    name = name.lower()
    return name if ":" in name else f"{name}:latest"


class State:
    lock = threading.Lock()
    runners: dict[str, subprocess.Popen] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Go's net/http (Ollama) sets: each NDJSON chunk goes out when written, not
    # held by Nagle until the client's delayed ACK of the headers (40 ms on Linux) comes back.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/api/version":
            self._json(200, {"version": VERSION})
        elif self.path == "/api/ps":
            with State.lock:
                names = list(State.runners)
            self._json(200, {"models": [{"name": n, "model": n, "size_vram": 0, "context_length": 4096}
                                        for n in names]})
        elif self.path == "/":
            body = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/api/create":
            models = _models()
            models[_full(body["model"])] = body.get("from", "")
            _registry().parent.mkdir(parents=True, exist_ok=True)
            _registry().write_text(json.dumps(models))
            self._json(200, {"status": "success"})
        elif self.path == "/api/show":
            if _full(body.get("model", "")) not in _models():
                self._json(404, {"error": f"model '{body.get('model')}' not found"})
                return
            self._json(200, {"details": {"format": "gguf", "family": "llama", "quantization_level": "Q4_1"},
                             "model_info": {"general.architecture": "llama"}})
        elif self.path in ("/api/generate", "/api/chat"):
            self._generate(body)
        else:
            self._json(404, {"error": "not found"})

    def _generate(self, body: dict) -> None:
        name = _full(body.get("model") or "")
        if name not in _models():
            self._json(404, {"error": f"model '{body.get('model')}' not found"})
            return
        chat = self.path == "/api/chat"
        text = json.dumps(body.get("messages")) if chat else (body.get("prompt") or "")
        if body.get("keep_alive") == 0 and not (body.get("messages") if chat else body.get("prompt")):
            with State.lock:
                runner = State.runners.pop(name, None)
            if runner:
                runner.terminate()
                runner.wait()
            self._json(200, {"model": body["model"], "created_at": _now(), "response": "", "done": True,
                             "done_reason": "unload"})
            return
        started = time.perf_counter_ns()
        load = 0
        with State.lock:
            if name not in State.runners:
                time.sleep(0.05)
                State.runners[name] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
                print(f"runner pid {State.runners[name].pid}", flush=True)
                load = time.perf_counter_ns() - started
        options = body.get("options") or {}
        n = int(options.get("num_predict") or 8)
        prompt_tokens = max(1, len(text.split()))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(obj: dict) -> None:
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        time.sleep(0.0001 * prompt_tokens)  # a prefill that grows with the prompt
        first = time.perf_counter_ns()
        for i in range(n):
            piece = '{"a": 1}' if body.get("format") == "json" and i == 0 else f" tok{i}"
            send({"model": body["model"], "created_at": _now(),
                  **({"message": {"role": "assistant", "content": piece}} if chat else {"response": piece}),
                  "done": False})
            time.sleep(0.002)
        end = time.perf_counter_ns()
        final = {"model": body["model"], "created_at": _now(), "done": True, "done_reason": "length",
                 "total_duration": end - started, "load_duration": load, "prompt_eval_count": prompt_tokens,
                 "prompt_eval_duration": max(first - started - load, 1), "eval_count": n,
                 "eval_duration": end - first}
        final.update({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""})
        send(final)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def serve() -> int:
    host, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    print(f"standin serve host={host}:{port} num_parallel={os.environ.get('OLLAMA_NUM_PARALLEL')} "
          f"context_length={os.environ.get('OLLAMA_CONTEXT_LENGTH')} models={os.environ.get('OLLAMA_MODELS')} "
          f"home={os.environ.get('HOME')} pid={os.getpid()}", flush=True)
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # the runners stay: the launcher's to stop
    server.serve_forever()
    return 0


def create(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "-f":
        print("usage: ollama create NAME -f Modelfile", file=sys.stderr)
        return 2
    name, modelfile = argv[0], Path(argv[2])
    source = next((line.split(None, 1)[1].strip() for line in modelfile.read_text().splitlines()
                   if line.upper().startswith("FROM ")), "")
    if not Path(source).is_file():
        print(f"Error: no Modelfile or safetensors files found: {source}", file=sys.stderr)
        return 1
    host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434")
    request = urllib.request.Request(f"http://{host}/api/create",
                                     data=json.dumps({"model": name, "from": source}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    print("success")
    return 0


def launcher(folder: Path) -> Path:
    """`folder/ollama`, a program that runs this stand-in: a shell script that execs this interpreter
    on it without `site` (-S; the stand-in needs only the standard library). It starts in tens of
    milliseconds, as a real `ollama` does, where the `python3` on PATH may be a shim that takes a
    third of a second for each `serve` and `create`. exec keeps the pid the launcher sees."""
    path = folder / "ollama"
    path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S {shlex.quote(str(Path(__file__).resolve()))} "
                    '"$@"\n')
    path.chmod(0o755)
    return path


def main(argv: list[str]) -> int:
    if argv[:1] in (["--version"], ["-v"]):
        print(f"ollama version is {VERSION}")
        return 0
    if argv[:1] == ["serve"]:
        return serve()
    if argv[:1] == ["create"]:
        return create(argv[1:])
    print(f"unknown command {argv[:1]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
