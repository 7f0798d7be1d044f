"""The npm `ollama` client (ollama-js) on Node.js: compat/js/cases.mjs makes the calls and prints
one JSON line per case; here each line is judged with the same checks as the Python clients."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import checks
from .core import UNKNOWN_MODEL, Case, Config, Skip, Target, check
from .py_client import json_answer

CLIENT = "ollama-js"
JS_DIR = Path(__file__).resolve().parent / "js"


def missing_tools() -> str | None:
    """Why the JavaScript client cannot run here, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Node.js 18+ and npm run the ollama-js cases)"
    return None


def installed() -> bool:
    return (JS_DIR / "node_modules" / "ollama" / "package.json").is_file()


def install(timeout: float = 600) -> None:
    """`npm ci` from the committed package-lock.json (reaches the npm registry)."""
    proc = subprocess.run(["npm", "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"npm ci --prefix compat/js failed ({proc.returncode}): {proc.stderr[-1000:]}")


class JsRun:
    """One `node cases.mjs` run, started by the first JavaScript case that needs it."""

    def __init__(self, config: Config):
        self.config = config
        self.records: dict[str, dict[str, Any]] | None = None
        self.stderr = ""

    def record(self, name: str) -> dict[str, Any]:
        reason = missing_tools()
        if reason:
            raise Skip(reason)
        if not installed():
            raise Skip("ollama-js is not installed: run npm ci --prefix compat/js")
        if self.records is None:
            self.records = self._run()
        rec = self.records.get(name)
        if rec is None:
            raise AssertionError(f"cases.mjs reported nothing for {name}; stderr: {self.stderr[-300:]}")
        if rec.get("skip"):
            raise Skip(rec["skip"])
        check(not rec.get("warnings"), f"ollama-js warned: {rec.get('warnings')}")
        return rec

    def _run(self) -> dict[str, dict[str, Any]]:
        args = {"url": self.config.url, "model": self.config.model, "embedModel": self.config.embed_model,
                "numPredict": self.config.num_predict}
        proc = subprocess.run(["node", str(JS_DIR / "cases.mjs"), json.dumps(args)], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=self.config.timeout * 4)
        self.stderr = proc.stderr
        records = {}
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                records[rec["case"]] = rec
        return records


def ok(rec: dict[str, Any]) -> Any:
    """The data of a case that was meant to succeed."""
    err = rec.get("error")
    check(rec.get("ok"), f"{err.get('name')}: {err.get('message')} (status {err.get('status_code')})" if err else "")
    return rec["data"]


def failed(rec: dict[str, Any]) -> dict[str, Any]:
    """The error a case that was meant to fail recorded."""
    err = ok(rec)
    check(err, "the call succeeded")
    return err


def js_error(status: int, text: str, name: str = "ResponseError") -> Callable[[dict[str, Any]], str]:
    def judge(rec: dict[str, Any]) -> str:
        err = failed(rec)
        check(err["name"] == name, f"{err['name']}, expected {name}: {err['message']}")
        checks.error(err["status_code"], err["message"], status, text)
        return f"{name} {status}: {err['message']}"
    return judge


def cases(config: Config, target: Target) -> list[Case]:
    run = JsRun(config)
    model = config.model

    def stream_text(rec: dict[str, Any], chat: bool) -> str:
        chunks = ok(rec)
        return f"{len(chunks)} chunks: " + repr(checks.stream(chunks, chat=chat))

    def pull_error(rec: dict[str, Any]) -> str:
        err = failed(rec)
        check("file does not exist" in err["message"] or "not found" in err["message"], err["message"])
        return f"{err['name']} {err['status_code']}: {err['message']}"

    def copy_delete(rec: dict[str, Any]) -> str:
        data = ok(rec)
        check(data["copied"]["status"] == "success", f"copy: {data['copied']}")
        check(any(checks.same_model(n, data["name"]) for n in data["listed"]), "the copy is not listed")
        check(data["gone"] and data["gone"]["status_code"] == 404, f"show after delete: {data['gone']}")
        return data["name"]

    def abort(rec: dict[str, Any]) -> str:
        data = ok(rec)
        check(data["error"] and data["error"]["name"] == "AbortError", f"abort raised {data['error']}")
        checks.final(data["after"], chat=False)
        return f"aborted after {data['chunks']} chunk(s); the next request answered"

    def keep_alive(rec: dict[str, Any]) -> str:
        checks.final(ok(rec), chat=False)
        return checks.ps(target.http.get("/api/ps").json(), model)["expires_at"]

    def format_json(rec: dict[str, Any]) -> str:
        data = ok(rec)
        check(isinstance(json_answer(data["response"], data.get("done_reason")), dict), "not a JSON object")
        return data["response"]

    def format_schema(rec: dict[str, Any]) -> str:
        data = ok(rec)
        value = json_answer(data["message"]["content"], data.get("done_reason"))
        check(isinstance(value, dict) and isinstance(value.get("answer"), bool), f"schema not followed: {value!r}")
        return data["message"]["content"]

    def tools_unsupported(rec: dict[str, Any]) -> str:
        if "tools" in target.capabilities(model):
            raise Skip(f"{model} supports tools")
        return js_error(400, "does not support tools")(rec)

    def create_stream(rec: dict[str, Any]) -> str:
        events = [e.get("status") for e in ok(rec)]
        check(events and events[-1] == "success", f"the stream ends with {events[-1:]}")
        return " > ".join(events[-2:])

    def embed(rec: dict[str, Any]) -> str:
        checks.embed(ok(rec), 2)
        return "2 vectors"

    def embeddings(rec: dict[str, Any]) -> str:
        vector = ok(rec).get("embedding")
        check(vector and all(isinstance(x, (int, float)) for x in vector), "no embedding")
        return f"{len(vector)} dimensions"

    judges: dict[str, Callable[[dict[str, Any]], Any]] = {
        "version": lambda rec: check(isinstance(ok(rec).get("version"), str), "no version") or ok(rec)["version"],
        "list": lambda rec: checks.tags(ok(rec), model),
        "show": lambda rec: checks.show(ok(rec)),
        "generate": lambda rec: checks.final(ok(rec), chat=False) or repr(ok(rec)["response"]),
        "generate-stream": lambda rec: stream_text(rec, chat=False),
        "chat": lambda rec: checks.final(ok(rec), chat=True) or repr(ok(rec)["message"]["content"]),
        "chat-stream": lambda rec: stream_text(rec, chat=True),
        "ps": lambda rec: checks.ps(ok(rec), model)["expires_at"],
        "keep-alive-string": keep_alive,
        "format-json": format_json,
        "format-schema-chat": format_schema,
        "tools-unsupported-400": tools_unsupported,
        "abort-stream": abort,
        "embed": embed,
        "embeddings": embeddings,
        "copy-delete": copy_delete,
        "create-stream": create_stream,
        "pull-unknown": pull_error,
        # a failure inside a stream is an in-band error line: ollama-js throws a plain Error
        "pull-unknown-stream": pull_error,
        "error-generate-unknown-model": js_error(404, f"model '{UNKNOWN_MODEL}' not found"),
        "error-chat-stream-unknown-model": js_error(404, f"model '{UNKNOWN_MODEL}' not found"),
        "error-show-unknown-model": js_error(404, "not found"),
        "error-delete-unknown-model": js_error(404, "not found"),
    }

    def case(name: str, judge: Callable[[dict[str, Any]], Any]) -> Case:
        def go() -> Any:
            rec = run.record(name)
            note = judge(rec)
            return f"{note or ''} ({rec['seconds']:.1f}s in node)".strip()
        return Case(CLIENT, name, go)

    return [case(name, judge) for name, judge in judges.items()]
