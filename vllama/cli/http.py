"""The CLI's side of the HTTP API: requests, NDJSON streams, Ollama's error shapes, a server on demand."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx

from ..config import client_url, is_loopback, server_host

AUTOSTART_WAIT = 120.0  # seconds a background server may take to answer


class CLIError(Exception):
    """An expected failure: printed as one `Error: ...` line, exit status `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


class ResponseError(CLIError):
    """The server answered with an error (`status` -1 when it came in-band, inside a stream)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _error_message(response: httpx.Response) -> str:
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return text or f"{response.status_code} {response.reason_phrase}"


def tls_for(base_url: str) -> ssl.SSLContext | bool:
    """httpx's `verify` for a client of one server: the CA bundle for https. Every request goes to
    the base URL, so over plain http no TLS is ever made, and httpx's default context (it loads the
    CA bundle: 40-80 ms, once per command) is not built: a bare one stands in, which would refuse
    any certificate if it were used."""
    if httpx.URL(base_url).scheme == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Client:
    """A thin synchronous client: JSON in, JSON or NDJSON out, errors as ResponseError."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        # No read timeout: a first request may wait for a model to load, a pull for a download.
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(None, connect=5.0),
                                 headers={"User-Agent": "vllama-cli"}, verify=tls_for(base_url))

    def _unreachable(self, err: Exception) -> CLIError:
        return CLIError(f"could not connect to a vllama server at {self.base_url} ({_reason(err)}); "
                        "start one with `vllama serve`")

    def heartbeat(self) -> bool:
        """`HEAD /` answers: a server is up. False when nothing listens there."""
        try:
            self.http.head("/", timeout=5.0)
            return True
        except httpx.ConnectError:
            return False
        except httpx.TimeoutException:
            raise CLIError(f"the server at {self.base_url} did not answer in time") from None
        except httpx.TransportError as err:
            raise self._unreachable(err) from None

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, json=body, **kwargs)
        except httpx.TransportError as err:
            raise self._unreachable(err) from None
        if response.status_code >= 400:
            raise ResponseError(_error_message(response), response.status_code)
        return response

    def json(self, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, body)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise CLIError(f"the server sent something that is not JSON for {path}") from None

    def stream(self, path: str, body: Any) -> Generator[dict[str, Any], None, None]:
        """POST and yield NDJSON objects; an `{"error"}` line raises. Closing the iterator closes
        the connection, which is how the server learns that an answer is no longer wanted."""
        try:
            with self.http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ResponseError(_error_message(response), response.status_code)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        chunk = json.loads(line)
                    except ValueError:
                        raise CLIError(f"the server sent a line that is not JSON: {line[:80]!r}") from None
                    if isinstance(chunk, dict) and chunk.get("error"):
                        raise ResponseError(str(chunk["error"]), -1)
                    yield chunk
        except httpx.TransportError as err:
            if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
                raise self._unreachable(err) from None
            raise CLIError(f"lost the connection to {self.base_url} ({_reason(err)})") from None

    def close(self) -> None:
        self.http.close()


def _reason(err: Exception) -> str:
    text = str(err).strip()
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text or type(err).__name__


def autostart_disabled() -> bool:
    value = os.environ.get("VLLAMA_NO_AUTOSTART", "").strip().lower()
    return value not in ("", "0", "false", "no")


def _is_local() -> bool:
    hp = server_host()
    if hp.scheme != "http":
        return False
    return hp.host in ("0.0.0.0", "::") or is_loopback(hp.host)


def state_dir() -> Path:
    return Path.home() / ".vllama"


def start_server(client: Client) -> Path:
    """`python -m vllama serve` detached from this terminal, logging to ~/.vllama/serve.log; returns
    the log's path once `HEAD /` answers."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "serve.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "vllama", "serve"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + AUTOSTART_WAIT
    while True:
        code = proc.poll()
        if code is not None:
            with contextlib.suppress(CLIError):
                if client.heartbeat():  # another command started one at the same moment: use it
                    return log_path
            raise CLIError(f"the background server stopped with exit status {code}; see {log_path}")
        with contextlib.suppress(CLIError):
            if client.heartbeat():
                (folder / "serve.pid").write_text(f"{proc.pid}\n")
                proc.returncode = 0  # it runs on by design: keep Popen from warning about it
                return log_path
        if time.monotonic() > deadline:
            raise CLIError(f"the background server did not answer within {AUTOSTART_WAIT:.0f} s; see {log_path}")
        time.sleep(0.2)


def connect(autostart: bool = True) -> Client:
    """A client for `client_url()`; with `autostart`, a local server is started when none answers."""
    client = Client(client_url())
    if client.heartbeat():
        return client
    if autostart and not autostart_disabled() and _is_local():
        log_path = start_server(client)
        print(f"Started a vllama server in the background on {client.base_url} "
              f"(log: {log_path}; pid in {log_path.with_name('serve.pid')})", file=sys.stderr)
        return client
    raise CLIError(f"could not connect to a vllama server at {client.base_url}; start one with `vllama serve`")
