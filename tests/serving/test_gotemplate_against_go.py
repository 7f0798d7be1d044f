"""The renderer against Go's own text/template, on outputs Go recorded.

data/go_text_template.json holds generated templates (trim markers, pipelines, variables, control
structures, builtins, printf verbs, nil printing, failures) and Go's answer to each: the text, or
that it failed. `raw` cases ran with one JSON document as dot (numbers as Go decodes them:
float64); `ollama` cases ran the way Ollama's template package runs a TEMPLATE layer (messages,
legacy and fill-in-the-middle paths, tools and tool calls in Ollama's template types). Failures
are compared word for word (the recording's Go types live in package main, Ollama's in package
template), except where Go panicked or where `slice` names an index's static type (`interface {}`
for a number taken out of a JSON map, which gotemplate reports by its dynamic type).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from vllama.serving import ollama_template
from vllama.serving.gotemplate import GoTemplate, TemplateError
from vllama.serving.ollama_template import TemplateValues, message_from_wire

RECORDED = json.loads((Path(__file__).parent / "data" / "go_text_template.json").read_text())
TODAY = dt.date(2026, 3, 1)  # what the recording's currentDate answered


def go_numbers(value):
    """JSON decoded into Go's `any`: every number a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: go_numbers(v) for k, v in value.items()}
    return [go_numbers(v) for v in value]


def outcome(render) -> tuple[str | None, str | None]:
    try:
        return render(), None
    except TemplateError as e:
        return None, e.message


def check(case, got: str | None, error: str | None) -> None:
    expected = case["error"]
    assert (error is None) == (expected is None), expected or got
    if expected is None:
        assert got == case["out"]
    elif not expected.startswith("panic:") and "slice/array with type interface {}" not in expected:
        assert error == expected.replace("main.", "template.")


@pytest.mark.parametrize("case", RECORDED["raw"], ids=lambda c: f"t{c['t']}")
def test_raw_templates_render_as_go_does(case):
    source = RECORDED["templates"][case["t"]]
    data = go_numbers(RECORDED["data"])
    check(case, *outcome(lambda: GoTemplate.parse(source).execute(data, today=TODAY)))


@pytest.mark.parametrize("case", RECORDED["ollama"], ids=lambda c: f"t{c['t']}")
def test_template_layers_render_as_ollama_does(case):
    source = RECORDED["templates"][case["t"]]
    tools = case.get("tools")
    values = TemplateValues(
        messages=tuple(message_from_wire(m) for m in case.get("messages", [])),
        tools=tuple(RECORDED["tools"] if tools == "TOOLS" else tools) if tools is not None else None,
        prompt=case.get("prompt", ""), suffix=case.get("suffix", ""), think=case.get("think"))
    check(case, *outcome(lambda: ollama_template.execute(ollama_template.parse(source), values,
                                                         today=TODAY)))


def test_the_recording_covers_successes_and_failures():
    for group in ("raw", "ollama"):
        errors = sum(1 for c in RECORDED[group] if c["error"])
        assert 0 < errors < len(RECORDED[group])
