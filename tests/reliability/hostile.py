"""Hostile request bodies (hypothesis strategies) and the checks every answer to one must pass.

Shared by the property tests against the scripted-engine app and against the real engine: a
client's mistake is never a 500 (only the documented engine and registry failures are), an error
is Ollama-shaped JSON (`{"error": str}`, or OpenAI's envelope on /v1), a stream is NDJSON or SSE
line by line, and the server answers the next request.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
from hypothesis import strategies as st

from tests.live_server import HTTP

# 500s Ollama documents for failures that are not the client's: the engine, the registry.
DOCUMENTED_500 = ("model runner failed", "failed to load model", "pull model manifest", "download failed")

OPTION_KEYS = ["num_predict", "num_ctx", "top_k", "top_p", "min_p", "temperature", "seed", "repeat_penalty",
               "repeat_last_n", "presence_penalty", "frequency_penalty", "typical_p", "stop", "num_keep",
               "num_batch", "num_gpu", "num_thread", "use_mmap", "mirostat"]

HUGE_INTS = [10**400, 2**31, 2**63, 2**64, 2**70, -(2**70), -1, -2**31, 0, 10**40]
SPECIAL_FLOATS = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324, -0.0, 1e-30]

# Text a client should not send but may: NUL and other control characters, lone surrogates (JSON
# `\ud800`), right-to-left marks, path pieces, very long runs.
NASTY_TEXT = ["", " ", "\0", "a\0b", "\x01\x1f\x7f", "\ud800", "x\udfffy", "\u202e", "\ufeff", "..", "../..",
              "/", "/etc/passwd", "../../../../etc/passwd", "C:\\Windows", "a" * 5000, "%00", "%2e%2e%2f",
              "tiny\0", "tiny/../../x", "\n\r\t", "💥" * 100, "{{ 7*7 }}", "<script>", "sha256:" + "0" * 64]

NASTY_NAMES = ["..", "../x", "a/../../b", "/abs", "a//b", "a/b/c/d", "\0", "a\0b", ":", "a:", ":b", "a::b",
               "x" * 81, "h" * 351 + "/n/m:t", "h" * 300 + "/n/m:t", "n/" + "m" * 80, "tiny:" + "t" * 81,
               "http://x/../y", "https://", "hf.co/../x", "a b", "@", "a@sha256:" + "0" * 64, "\ud800",
               "TINY", " tiny ", "tiny:latest", "-x", ".x", "_x", "x.", "a" * 80, "h.." + "/n/m"]


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers() | st.sampled_from(HUGE_INTS)
               | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(SPECIAL_FLOATS)
               | st.text(max_size=40) | st.sampled_from(NASTY_TEXT))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=max_leaves)


def options() -> st.SearchStrategy[dict[str, Any]]:
    hostile = (st.sampled_from(HUGE_INTS) | st.sampled_from(SPECIAL_FLOATS) | st.integers()
               | st.floats(allow_nan=True, allow_infinity=True) | json_values(4))
    return st.dictionaries(st.sampled_from(OPTION_KEYS), hostile, max_size=5)


def mutated(base: dict[str, Any], fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with fields dropped, retyped or set to hostile values, plus unknown extras."""
    # Built once, not per draw: a new recursive strategy is validated on its first draw (half the
    # CPU of these tests when each draw made its own); the same strategies draw the same values.
    values, option_values = json_values(), options()
    extras = st.dictionaries(st.text(max_size=10), json_values(4), max_size=3)

    @st.composite
    def build(draw) -> dict[str, Any]:
        body = dict(base)
        for key in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True)):
            choice = draw(st.integers(0, 4))
            if choice == 0:
                body.pop(key, None)
            elif choice == 1:
                body[key] = draw(values)
            elif choice == 2:
                body[key] = draw(st.sampled_from(NASTY_TEXT + NASTY_NAMES))
            elif choice == 3:
                body[key] = draw(st.sampled_from(HUGE_INTS + SPECIAL_FLOATS))
            else:
                body[key] = draw(option_values)
        if draw(st.booleans()):
            body.update(draw(extras))
        return body

    return build()


def encode(body: Any) -> bytes:
    """JSON as a client may write it: NaN/Infinity literals where floats are not finite."""
    return json.dumps(body, allow_nan=True).encode()


RAW_BODIES = [
    b"", b" ", b"null", b"[]", b"0", b'"x"', b"true", b"{", b"}", b"{}", b'{"model":', b"\xff\xfe\x00",
    b'{"model": "tiny", "prompt": "\xff\xfe invalid utf-8 \xc3\x28"}', b'{"model": NaN}', b'{"a": Infinity}',
    b'{"a": -Infinity}', b'{"options": {"num_predict": 1e400}}', b'{"options": {"seed": ' + b"9" * 5000 + b"}}",
    b'{"keep_alive": ' + b"1" * 4400 + b"}", b"[" * 100_000, b'{"a":' * 50_000, b'{"model": "x"} trailing',
    b'{"model": "\\ud800"}', b'{"prompt": "\x01\x02"}', b"\x00" * 100, b'{"model": "tiny", "model": 1}',
    b'{"keep_alive": 1e300}', b'{"keep_alive": "9999999999999h"}', b'{"keep_alive": -1e400}',
]

raw_bodies = st.sampled_from(RAW_BODIES) | st.binary(max_size=200) | json_values().map(encode)


# -- checks ---------------------------------------------------------------------------------------

class Failure(AssertionError):
    pass


def _error_message(path: str, payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if path.startswith("/v1/") and isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) else None


def check_answer(response: httpx.Response, path: str, body: bytes = b"") -> None:
    """Status < 500 unless documented; an Ollama-shaped error; a well-formed stream."""
    status = response.status_code
    text = response.content
    where = f"{response.request.method} {path} -> {status}: {text[:300]!r} (body {body[:200]!r})"
    if status in (404, 405) and response.headers.get("content-type", "").startswith("text/plain"):
        return  # gin's router answers for unknown paths and methods, as Ollama's does
    if status >= 400:
        try:
            payload = json.loads(text)
        except ValueError:
            raise Failure(f"error is not JSON: {where}") from None
        message = _error_message(path, payload)
        if message is None:
            raise Failure(f"error is not Ollama-shaped: {where}")
        if status >= 500 and not message.startswith(DOCUMENTED_500):
            raise Failure(f"server error for a client's request: {where}")
        return
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/x-ndjson"):
        lines = text.decode().split("\n")
        assert lines[-1] == "", where
        for line in lines[:-1]:
            chunk = json.loads(line)  # raises on a broken line
            if "error" in chunk:
                message = chunk["error"]
                if not isinstance(message, str) or not message.startswith(DOCUMENTED_500):
                    raise Failure(f"in-band error for a client's request: {line!r} in {where}")
    elif kind.startswith("text/event-stream"):
        for frame in text.decode().split("\n\n"):
            if frame.startswith("data: ") and frame != "data: [DONE]":
                chunk = json.loads(frame[len("data: "):])
                if "error" in chunk:
                    message = _error_message(path, chunk)
                    if not (message or "").startswith(DOCUMENTED_500):
                        raise Failure(f"in-band error for a client's request: {frame!r} in {where}")
    elif kind.startswith("application/json") and text:
        json.loads(text, parse_constant=_no_constants)  # the server never writes NaN


def _no_constants(name: str) -> None:
    raise Failure(f"the server wrote {name}")


def check_alive(base_url: str, ps: bool = True, client: httpx.Client | None = None) -> None:
    """HEAD / answers 200; so do /api/ps and /metrics, which read every loaded model's state (a
    hostile keep_alive must not break them for everyone)."""
    http, timeout = (client, client.timeout) if client else (HTTP, httpx.Timeout(30))
    r = http.head(base_url + "/", timeout=timeout)
    assert r.status_code == 200, f"HEAD / answered {r.status_code} after a hostile request"
    if ps:
        for path in ("/api/ps", "/metrics"):
            r = http.get(base_url + path, timeout=timeout)
            assert r.status_code == 200, f"GET {path} answered {r.status_code}: {r.text[:300]}"


def finite(x: Any) -> bool:
    return not isinstance(x, float) or math.isfinite(x)
