"""The compat suite's own parts, without an engine: skeletons, the recordings' parser, the comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compat import golden
from compat.compare import Rules, compare
from compat.golden import Response, parse_curl
from compat.known import INCOMPATIBILITIES, KNOWN_DIFFERENCES, expected_failure
from compat.raw import full_name
from compat.shape import diff, merge, shape

GOLDEN_DIR = golden.find_dir()
needs_recordings = pytest.mark.skipif(GOLDEN_DIR is None, reason="the reference recordings are not next to this checkout")
JSON = "application/json; charset=utf-8"


def answer(body, status=200, content_type=JSON) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, {"content-type": content_type}, data)


def ndjson(*lines) -> Response:
    return answer(b"".join(json.dumps(line).encode() + b"\n" for line in lines), content_type="application/x-ndjson")


# -- shape ---------------------------------------------------------------------------------------

def test_shape_keeps_keys_and_types_not_values():
    value = {"model": "m", "done": True, "eval_count": 5, "ratio": 0.5, "context": [1, 2], "x": None, "l": []}
    assert shape(value) == {"model": "str", "done": "bool", "eval_count": "int", "ratio": "float",
                            "context": ["int"], "x": "null", "l": []}


def test_shape_merges_list_items():
    assert shape([{"a": 1}, {"a": 1.5, "b": "x"}]) == [{"a": "float", "b": "str"}]
    assert shape([1, "x"]) == ["int|str"]
    assert merge("null", "str") == "str"


def test_diff_reports_missing_extra_and_type_changes():
    lines = diff({"a": "int", "b": "str"}, {"a": "float", "c": "str"})
    assert "$.b: missing" in lines and "$.c: not in the reference" in lines
    assert any(line.startswith("$.a: float, reference int") for line in lines)


def test_diff_tolerates_what_go_writes_differently():
    assert diff({"v": "float"}, {"v": "int"}) == []  # Go writes 1.0 as 1
    assert diff({"v": "null"}, {"v": ["str"]}) == []  # a nil slice
    assert diff({"m": []}, {"m": [{"name": "str"}]}) == []  # an empty list says nothing about items
    assert diff({"i": {"x": "int"}}, {"i": {"y": "str"}}, opaque=frozenset({"$.i"})) == []


# -- recordings ----------------------------------------------------------------------------------

def test_parse_curl_commands():
    r = parse_curl(r"curl -sS -i -N -H Content-Type:\ application/json -d \{\"model\":\"m\"\} http://h:1/api/chat")
    assert (r.method, r.path, r.stream, r.body) == ("POST", "/api/chat", True, b'{"model":"m"}')
    assert r.headers == {"Content-Type": "application/json"}
    assert parse_curl("curl -sS -i -I http://h:1/").method == "HEAD"
    assert parse_curl("curl -sS -i -X DELETE -d {} http://h:1/api/delete").method == "DELETE"
    assert parse_curl("curl -sS -i -H Content-Type:\\ application/json -X POST http://h:1/api/generate").body is None


@needs_recordings
def test_every_recording_parses_and_matches_itself():
    goldens = golden.load(GOLDEN_DIR)
    assert len(goldens) > 40
    for g in goldens.values():
        length = g.response.headers.get("content-length")
        if length and g.request.method != "HEAD":
            assert int(length) == len(g.response.body), g.name
        assert compare(g.response, g.response) == [], g.name


@needs_recordings
def test_a_recorded_stream_against_a_changed_one():
    g = golden.load(GOLDEN_DIR)["08"]
    lines = g.response.body.decode().splitlines()
    changed = "\n".join(lines[:2] + [""] + lines[2:]) + "\n"  # a blank line
    assert any("blank line" in d for d in _framing(g.response, changed))
    final = json.loads(lines[-1])
    final["eval_count"] = 5.0
    final["done_reason"] = "load"
    body = "\n".join(lines[:-1] + [json.dumps(final)]) + "\n"
    out = compare(g.response, Response(200, g.response.headers, body.encode()))
    assert "line[-1].eval_count: float, reference int" in out
    assert "line[-1].done_reason: 'load', reference 'length'" in out


def _framing(expected: Response, body: str) -> list[str]:
    from compat.compare import Framing

    try:
        return compare(expected, Response(200, expected.headers, body.encode()))
    except Framing as err:
        return [str(err)]


# -- comparison rules ----------------------------------------------------------------------------

def test_status_content_type_and_protocol_values():
    ref = answer({"model": "m", "done": True, "done_reason": "stop", "created_at": "2026-01-01T00:00:00.5Z"})
    assert compare(ref, answer({"model": "m", "done": True, "done_reason": "length",
                                "created_at": "2026-01-01T00:00:01Z"})) == []
    out = compare(ref, answer({"model": "m", "done": False, "done_reason": "stop", "created_at": "2026-01-01 00:00"},
                              status=201, content_type="application/json"))
    assert "status 201, reference 200" in out
    assert any(line.startswith("content type") for line in out)
    assert "$.done: False, reference True" in out
    assert any("RFC 3339" in line for line in out)


def test_model_echo_is_compared_where_the_reference_echoes_the_request():
    ref = answer({"model": "Tiny"})
    assert compare(ref, answer({"model": "tiny:latest"}), Rules(expected_model="Tiny")) == [
        "$.model: 'tiny:latest', the requested name is 'Tiny'"]
    assert compare(ref, answer({"model": "other"}), Rules(expected_model="x")) == []


def test_ndjson_must_end_with_a_newline_and_sse_with_done():
    from compat.compare import Framing

    with pytest.raises(Framing, match="newline"):
        compare(ndjson({"done": True}), Response(200, {"content-type": "application/x-ndjson"}, b'{"done":true}'))
    sse = Response(200, {"content-type": "text/event-stream"}, b'data: {"a":1}\n\ndata: [DONE]\n\n')
    assert compare(sse, sse) == []
    with pytest.raises(Framing, match=r"\[DONE\]"):
        compare(sse, Response(200, sse.headers, b'data: {"a":1}\n\n'))


def test_events_between_are_matched_to_any_event_between():
    ref = ndjson({"c": "a", "f": None}, {"c": "b", "f": None}, {"c": "", "f": "length"}, {"usage": 1})
    got = ndjson({"c": "a", "f": None}, {"c": "", "f": "stop"}, {"usage": 2})
    assert compare(ref, got) == []


def test_full_name():
    assert full_name("smollm2:135m") == "registry.ollama.ai/library/smollm2:135m"
    assert full_name("tiny") == "registry.ollama.ai/library/tiny:latest"
    assert full_name("me/x") == "registry.ollama.ai/me/x:latest"


# -- the list of differences ---------------------------------------------------------------------

def test_every_difference_id_is_documented_and_used():
    doc = (Path(__file__).resolve().parents[2] / "compat" / "KNOWN_DIFFERENCES.md").read_text()
    headings = set(re.findall(r"^## ((?:KD|INC)-\d+)", doc, re.M))
    assert headings == set(KNOWN_DIFFERENCES) | set(INCOMPATIBILITIES)
    source = "".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "compat").glob("*.py")
                     if p.name != "known.py")
    used = set(re.findall(r'"((?:KD|INC)-\d+)"', source))
    assert used <= headings
    assert not expected_failure("INC-1", "status 500, reference 404")  # fixed ones are expected no more
