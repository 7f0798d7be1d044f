"""What every client must get back, checked on plain dicts (the Python clients' models dumped to
JSON, the JavaScript client's results as it printed them). The list follows what Ollama's Go
integration tests assert (reference/ollama-api.md section 10)."""

from __future__ import annotations

import math
from typing import Any

from .compare import HEX64, RFC3339
from .core import check

METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
           "eval_duration")
DETAILS = ("format", "family", "parameter_size", "quantization_level")


def same_model(a: str, b: str) -> bool:
    """Ollama's name equality: case-insensitive, `:latest` implied."""
    def norm(n: str) -> str:
        n = n.lower()
        return n if ":" in n.rsplit("/", 1)[-1] else n + ":latest"
    return norm(a) == norm(b)


def final(d: dict[str, Any], *, chat: bool, raw: bool = False) -> None:
    """The last (or only) answer of a generation: done, a normal reason, six non-zero integer metrics."""
    check(d.get("done") is True, f"done is {d.get('done')!r}")
    check(d.get("done_reason") in ("stop", "length"), f"done_reason {d.get('done_reason')!r}")
    for key in METRICS:
        value = d.get(key)
        check(isinstance(value, int) and not isinstance(value, bool) and value > 0, f"{key} is {value!r}")
    check(isinstance(d.get("created_at"), str) and RFC3339.match(d["created_at"]),
          f"created_at {d.get('created_at')!r} is not RFC 3339")
    check(d.get("model"), "no model in the answer")
    if chat:
        message = d.get("message") or {}
        check(message.get("role") == "assistant", f"message.role {message.get('role')!r}")
        check(isinstance(message.get("content"), str), "message.content is not a string")
    else:
        check(isinstance(d.get("response"), str), "response is not a string")
        if not raw:
            context = d.get("context")
            check(isinstance(context, list) and context and all(isinstance(t, int) for t in context),
                  "no context token list")


def stream(chunks: list[dict[str, Any]], *, chat: bool) -> str:
    """A streamed generation: chunks not done, then one final chunk; returns the text."""
    check(chunks, "no chunks")
    check(all(c.get("done") is False for c in chunks[:-1]), "a chunk before the last says done")
    final(chunks[-1], chat=chat)
    if chat:
        check(all((c.get("message") or {}).get("role") == "assistant" for c in chunks), "a chunk without role")
        check((chunks[-1].get("message") or {}).get("content") == "", "the final chunk carries text")
        return "".join(c["message"]["content"] for c in chunks)
    check(chunks[-1].get("response") == "", "the final chunk carries text")
    return "".join(c.get("response", "") for c in chunks)


def tags(d: dict[str, Any], model: str) -> None:
    models = d.get("models")
    check(isinstance(models, list), "models is not a list")
    names = [m.get("name") or m.get("model") for m in models]
    check(any(same_model(n, model) for n in names if n), f"{model} not in {names}")
    for m in models:
        check(m.get("model"), f"an entry without model: {m}")
        check(isinstance(m.get("size"), int) and m["size"] > 0, f"{m.get('name')}: size {m.get('size')!r}")
        check(isinstance(m.get("digest"), str) and HEX64.match(m["digest"]), f"{m.get('name')}: digest")
        check(isinstance(m.get("modified_at"), str) and m["modified_at"], f"{m.get('name')}: modified_at")
        details = m.get("details") or {}
        check(all(details.get(k) for k in DETAILS), f"{m.get('name')}: details {details}")


def show(d: dict[str, Any]) -> None:
    info = d.get("model_info") or d.get("modelinfo")
    check(isinstance(info, dict) and info, "model_info is empty")
    check("general.architecture" in info, "model_info without general.architecture")
    caps = d.get("capabilities")
    check(isinstance(caps, list) and caps, f"capabilities {caps!r}")
    for key in ("modelfile", "template", "details", "modified_at"):
        check(key in d, f"show without {key}")


def ps(d: dict[str, Any], model: str) -> dict[str, Any]:
    """The model is loaded, with what the Go tests require of a /api/ps entry; returns the entry."""
    models = d.get("models")
    check(isinstance(models, list), "models is not a list")
    entry = next((m for m in models if same_model(m.get("model") or m.get("name") or "", model)), None)
    check(entry is not None, f"{model} not loaded: {[m.get('model') for m in models]}")
    check(isinstance(entry.get("size"), int) and entry["size"] > 0, f"size {entry.get('size')!r}")
    check(isinstance(entry.get("digest"), str) and entry["digest"], "no digest")
    check(entry.get("expires_at"), "no expires_at")
    details = entry.get("details") or {}
    check(all(details.get(k) for k in DETAILS), f"details {details}")
    return entry


def embed(d: dict[str, Any], count: int) -> None:
    vectors = d.get("embeddings")
    check(isinstance(vectors, list) and len(vectors) == count, f"{count} vectors expected, got {vectors!r:.80}")
    for v in vectors:
        check(v and all(isinstance(x, (int, float)) for x in v), "a vector is empty or not numbers")
        norm = math.sqrt(sum(x * x for x in v))
        check(abs(norm - 1) < 1e-3, f"/api/embed vectors are L2-normalised; norm {norm:.4f}")
    check(isinstance(d.get("prompt_eval_count"), int), "no prompt_eval_count")


def error(status: Any, message: str, want_status: int, want_text: str) -> None:
    check(status == want_status, f"status {status}, expected {want_status} ({message})")
    check(want_text in message, f"error {message!r} does not say {want_text!r}")
