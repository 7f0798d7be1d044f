"""Compare two HTTP answers the way a client sees them: status, content type, framing (JSON, NDJSON,
SSE, text), key sets and value types, and the few values that are part of the protocol."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .golden import Response
from .shape import diff, merge, shape

# Values that are the protocol, not the run: compared whenever both sides hold a scalar there.
VALUE_KEYS = frozenset({"done", "done_reason", "finish_reason", "role", "object", "error", "status", "type",
                        "system_fingerprint", "owned_by", "message", "code", "param"})
# Echoes of the requested name: compared where the reference echoes the model it was asked for.
ECHO_KEYS = frozenset({"model", "id"})
# Lists whose items are compared value by value; other lists (models, tensors, data) vary per store.
VALUE_LISTS = frozenset({"choices"})
# Normal ends of a generation: which one depends on the text the model wrote.
NORMAL_ENDS = frozenset({"stop", "length"})

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
FORMATS = {"created_at": RFC3339, "modified_at": RFC3339, "expires_at": RFC3339, "digest": HEX64}


@dataclass
class Rules:
    """How one exchange is compared."""

    expected_model: str | None = None  # the name the reference echoes (after substitution)
    ignore_values: frozenset[str] = frozenset()  # VALUE_KEYS whose values depend on the machine
    opaque: frozenset[str] = frozenset()  # JSON paths compared by kind only
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> keys that must be there
    # Where the newest Ollama answers differently from the (older) recording: divergences at paths
    # ending so are not counted. Each use names the newer behaviour (see raw.GOLDEN_RULES).
    newer: frozenset[str] = frozenset()


def media(content_type: str) -> str:
    return content_type.replace(" ", "").lower()


def compare(expected: Response, actual: Response, rules: Rules | None = None) -> list[str]:
    rules = rules or Rules()
    out: list[str] = []
    if actual.status != expected.status:
        out.append(f"status {actual.status}, reference {expected.status}")
    if media(actual.content_type) != media(expected.content_type):
        out.append(f"content type {actual.content_type!r}, reference {expected.content_type!r}")
    kind = media(expected.content_type).split(";")[0]
    if not expected.body:
        if actual.body:
            out.append(f"a body of {len(actual.body)} bytes, reference none")
        return out
    if kind == "application/x-ndjson":
        out += _compare_events(_ndjson(expected.body, "reference"), _ndjson(actual.body, "answer"), rules)
    elif kind == "text/event-stream":
        out += _compare_events(_sse(expected.body, "reference"), _sse(actual.body, "answer"), rules)
    elif kind == "application/json":
        try:
            got = json.loads(actual.body)
        except ValueError:
            return out + [f"body is not JSON: {actual.body[:80]!r}"]
        out += _compare_values(json.loads(expected.body), got, rules)
    elif actual.body != expected.body:
        out.append(f"body {actual.body[:80]!r}, reference {expected.body[:80]!r}")
    return [line for line in out if not line.split(": ", 1)[0].endswith(tuple(rules.newer))]


def _compare_values(expected: Any, actual: Any, rules: Rules, where: str = "$") -> list[str]:
    out = [f"{where}{line[1:]}" for line in diff(shape(expected), shape(actual), opaque=rules.opaque)]
    out += _values(expected, actual, rules, where)
    out += _formats(actual, where)
    for path, keys in rules.required.items():
        node = _at(actual, path)
        if isinstance(node, dict):
            out += [f"{where}{path[1:]}.{k}: missing" for k in keys if k not in node]
    return out


def _values(expected: Any, actual: Any, rules: Rules, path: str) -> list[str]:
    out: list[str] = []
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, want in expected.items():
            if key not in actual:
                continue
            got, sub = actual[key], f"{path}.{key}"
            if key in VALUE_KEYS and key not in rules.ignore_values and _scalar(want) and _scalar(got):
                if not _same(key, want, got):
                    out.append(f"{sub}: {got!r}, reference {want!r}")
            elif key in ECHO_KEYS and path == "$" and rules.expected_model and want == rules.expected_model:
                if got != want:
                    out.append(f"{sub}: {got!r}, the requested name is {want!r}")
            elif key in VALUE_LISTS and isinstance(want, list) and isinstance(got, list):
                for i, (w, g) in enumerate(zip(want, got)):
                    out += _values(w, g, rules, f"{sub}[{i}]")
            elif isinstance(want, dict):
                out += _values(want, got, rules, sub)
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _same(key: str, want: Any, got: Any) -> bool:
    if key in ("done_reason", "finish_reason") and want in NORMAL_ENDS and got in NORMAL_ENDS:
        return True
    return want == got and type(want) is type(got)


def _formats(value: Any, path: str) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            pattern = FORMATS.get(key)
            if pattern and isinstance(item, str) and not pattern.match(item):
                out.append(f"{path}.{key}: {item!r} is not {'RFC 3339' if pattern is RFC3339 else '64 hex digits'}")
            out += _formats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value[:3]:
            out += _formats(item, f"{path}[]")
    return out


def _at(value: Any, path: str) -> Any:
    for part in path.lstrip("$").split(".")[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


# -- streams ------------------------------------------------------------------------------------

class Framing(ValueError):
    pass


def _ndjson(body: bytes, who: str) -> list[Any]:
    """One JSON object per `\\n`-terminated line, no blank line, the last one done/success/error."""
    text = body.decode()
    if not text.endswith("\n"):
        raise Framing(f"{who}: the stream does not end with a newline")
    events = []
    for n, line in enumerate(text[:-1].split("\n")):
        if not line.strip():
            raise Framing(f"{who}: blank line {n + 1} in an NDJSON stream")
        try:
            events.append(json.loads(line))
        except ValueError:
            raise Framing(f"{who}: line {n + 1} is not JSON: {line[:60]!r}") from None
        if not isinstance(events[-1], dict):
            raise Framing(f"{who}: line {n + 1} is not a JSON object")
    return events


def _sse(body: bytes, who: str) -> list[Any]:
    """`data: <json>\\n\\n` frames ending with `data: [DONE]\\n\\n`."""
    text = body.decode()
    if not text.endswith("\n\n"):
        raise Framing(f"{who}: the event stream does not end with a blank line")
    frames = text[:-2].split("\n\n")
    if frames[-1] != "data: [DONE]":
        raise Framing(f"{who}: the event stream does not end with data: [DONE]")
    events = []
    for n, frame in enumerate(frames[:-1]):
        if not frame.startswith("data: ") or "\n" in frame:
            raise Framing(f"{who}: frame {n + 1} is not one data line: {frame[:60]!r}")
        try:
            events.append(json.loads(frame[6:]))
        except ValueError:
            raise Framing(f"{who}: frame {n + 1} is not JSON: {frame[:60]!r}") from None
    return events


def _compare_events(expected: list[Any] | Framing, actual: list[Any] | Framing, rules: Rules) -> list[str]:
    """First and last event one to one; the events between by their merged shape, and each one's values
    like those of some event between in the reference."""
    if not expected or not actual:
        return [f"an empty stream ({'reference' if not expected else 'answer'})"]
    out: list[str] = []
    out += _compare_values(expected[0], actual[0], rules, "line[0]")
    if len(expected) > 1 and len(actual) > 1:
        out += _compare_values(expected[-1], actual[-1], rules, "line[-1]")
    elif len(expected) != len(actual):
        out.append(f"{len(actual)} lines, reference {len(expected)}")
    mid_e, mid_a = expected[1:-1], actual[1:-1]
    if mid_e and mid_a:
        merged_e, merged_a = shape(mid_e[0]), shape(mid_a[0])
        for item in mid_e[1:]:
            merged_e = merge(merged_e, shape(item))
        for item in mid_a[1:]:
            merged_a = merge(merged_a, shape(item))
        out += [f"line[1:-1]{line[1:]}" for line in diff(merged_e, merged_a, opaque=rules.opaque)]
        # Each event between must be like one of the reference's (a content chunk, a finish chunk ...).
        for i, item in enumerate(mid_a, 1):
            out += min((_values(e, item, rules, f"line[{i}]") for e in mid_e), key=len)
    return list(dict.fromkeys(out))  # the same divergence on many lines: once
