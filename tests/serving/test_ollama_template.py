"""Ollama's Template.Execute: the messages, legacy and fill-in-the-middle paths, and the Go values a
template sees (cases follow Ollama's own template tests and Go's printing rules)."""

from __future__ import annotations

import pytest

from vllama.serving import ollama_template as ot
from vllama.serving.gotemplate import TemplateExecError
from vllama.serving.ollama_template import PromptMessage as M
from vllama.serving.ollama_template import PromptToolCall, TemplateValues

CHAT = (M("user", "Hello friend!"), M("assistant", "Hello human!"), M("user", "What is your name?"))
MISTRAL = "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "


def run(source: str, values: TemplateValues) -> str:
    return ot.execute(ot.parse(source), values)


@pytest.mark.parametrize("source", [
    "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] ",  # Response appended
    "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}",
    "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n"
    '{{- if eq .Role "user" }}{{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n'
    "{{- end }}",
])
def test_legacy_and_messages_templates_render_the_same_conversation(source):
    assert run(source, TemplateValues(messages=CHAT)) == MISTRAL


def test_legacy_template_continues_a_trailing_assistant_message():
    values = TemplateValues(messages=CHAT + (M("assistant", "My name is Ollama and I"),))
    assert run("[INST] {{ .Prompt }}[/INST] {{ .Response }}", values) == \
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"


def test_legacy_last_turn_is_cut_after_response():
    chatml = ("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
              "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
              "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n")
    values = TemplateValues(messages=(M("system", "Be kind."),) + CHAT)
    assert run(chatml, values) == (
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n"
        "<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n"
        "<|im_start|>assistant\n")


def test_legacy_system_message_mid_conversation_starts_a_new_turn():
    values = TemplateValues(messages=(M("user", "a"), M("system", "s"), M("user", "b")))
    assert run("({{ .System }}|{{ .Prompt }}|{{ .Response }})", values) == "(|a|)(s|b|"


def test_legacy_last_turn_has_no_ollama_functions():
    # Ollama executes the cut tree without its function map: json is undefined there
    with pytest.raises(TemplateExecError, match='"json" is not a defined function'):
        run("{{ json .Prompt }}", TemplateValues(messages=(M("user", "x"),)))


def test_response_inside_an_if_with_else_cannot_be_cut():
    with pytest.raises(TemplateExecError, match="cannot cut"):
        run("{{ if .Prompt }}{{ .Response }}{{ else }}none{{ end }}",
            TemplateValues(messages=(M("user", "x"),)))


def test_ollama_refuses_a_template_call_without_a_pipeline():
    from vllama.serving.gotemplate import TemplateParseError
    with pytest.raises(TemplateParseError, match="undefined template specified"):
        ot.parse('{{ define "x" }}X{{ end }}{{ template "x" }}')
    source = ('{{ define "turn" }}<{{ .Role }}>{{ .Content }}{{ end }}'
              '{{ range .Messages }}{{ template "turn" . }}{{ end }}')
    assert run(source, TemplateValues(messages=CHAT[:2])) == "<user>Hello friend!<assistant>Hello human!"


def test_fill_in_the_middle_needs_both_prompt_and_suffix():
    fim = ("{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n"
           "{{- else }}{{ .Prompt }}\n{{- end }}")
    assert run(fim, TemplateValues(prompt="def add(", suffix="return x")) == "<PRE> def add( <SUF>return x <MID>"
    assert run(fim, TemplateValues(messages=(M("user", "hello"),))) == "hello"


def test_messages_path_sees_all_system_messages_joined_and_merged_roles():
    source = "{{ .System }}|{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}"
    values = TemplateValues(messages=(M("system", "a"), M("system", "b"), M("user", "1"),
                                      M("user", "2"), M("tool", "t1"), M("tool", "t2")))
    assert run(source, values) == "a\n\nb|system=a\n\nb;user=1\n\n2;tool=t1;tool=t2;"


def test_messages_path_has_no_prompt():
    assert run("{{ .Prompt }}{{ range .Messages }}{{ .Content }}{{ end }}",
               TemplateValues(messages=(M("user", "x"),))) == "<no value>x"


@pytest.mark.parametrize("think,expected", [
    (None, "false||false"), (True, "true|medium|true"), (False, "false||true"),
    ("high", "true|high|true"),
])
def test_think_values(think, expected):
    source = "{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}{{ range .Messages }}{{ end }}"
    assert run(source, TemplateValues(messages=(M("user", "x"),), think=think)) == expected


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "unit": {"type": ["string", "null"], "enum": ["c", "f"], "description": "Unit"},
        "city": {"type": "string", "description": "City name"}}}}}


def test_tools_print_as_json_and_range_with_sorted_properties():
    source = ("{{ range .Tools }}def {{ .Function.Name }}("
              "{{ range $name, $p := .Function.Parameters.Properties }}{{ $name }}: {{ $p.Type }}, {{ end }})"
              "{{ end }}\n{{ .Tools }}{{ range .Messages }}{{ end }}")
    assert run(source, TemplateValues(messages=(M("user", "x"),), tools=(WEATHER,))) == (
        "def get_weather(city: string, unit: [string null], )\n"
        '[{"type":"function","function":{"name":"get_weather","description":"Get the weather",'
        '"parameters":{"type":"object","required":["city"],"properties":{'
        '"city":{"type":"string","description":"City name"},'
        '"unit":{"type":["string","null"],"description":"Unit","enum":["c","f"]}}}}}]')


def test_tools_absent_empty_and_typescript_types():
    source = "[{{ .Tools }}]{{ if .Tools }}yes{{ end }}{{ range .Messages }}{{ end }}"
    assert run(source, TemplateValues(messages=(M("user", "x"),))) == "[null]"
    assert run(source, TemplateValues(messages=(M("user", "x"),), tools=())) == "[[]]"
    ts = ("{{ range .Tools }}{{ range $n, $p := .Function.Parameters.Properties }}"
          "{{ $n }}: {{ toTypeScriptType $p }};{{ end }}{{ end }}{{ range .Messages }}{{ end }}")
    assert run(ts, TemplateValues(messages=(M("user", "x"),), tools=(WEATHER,))) == \
        "city: string;unit: string | null;"


def test_a_tool_function_prints_as_a_go_struct():
    source = "{{ range .Tools }}{{ .Function }}{{ end }}{{ range .Messages }}{{ end }}"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                         "properties": {"a": {"type": "string"}}}}}
    assert run(source, TemplateValues(messages=(M("user", "x"),), tools=(tool,))) == \
        '{f  {object <nil> <nil> [] {"a":{"type":"string"}}}}'


def test_tool_calls_arguments_print_as_json_with_go_numbers():
    call = PromptToolCall(name="add", arguments={"b": 2, "a": 1.5, "big": 12345678})
    source = ("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }} {{ .Function.Arguments }} "
              "{{ .Function.Arguments.big }}{{ end }}{{ end }}")
    assert run(source, TemplateValues(messages=(M("assistant", tool_calls=(call,)),))) == \
        'add {"a":1.5,"b":2,"big":12345678} 1.2345678e+07'
    empty = M("assistant", tool_calls=(PromptToolCall(name="noop"),))
    assert run("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}",
               TemplateValues(messages=(empty,))) == "{}"


def test_message_fields_the_templates_use():
    m = M("assistant", "answer", thinking="hmm", tool_name="t", tool_call_id="c1")
    source = ("{{ range .Messages }}{{ .Role }}|{{ .Content }}|{{ .Thinking }}|{{ .ToolName }}|"
              "{{ .ToolCallID }}|{{ if .ToolCalls }}calls{{ end }}|{{ if .Images }}img{{ end }}{{ end }}")
    assert run(source, TemplateValues(messages=(m,))) == "assistant|answer|hmm|t|c1||"


def test_wire_messages_round_trip():
    wire = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "function": {"name": "f", "arguments": {"x": 1}}}], "thinking": "t"}
    message = ot.message_from_wire(wire)
    assert message.tool_calls == (PromptToolCall(name="f", arguments={"x": 1}, id="c1"),)
    assert ot.message_to_wire(message) == wire


def test_legacy_last_turn_has_no_defined_templates_either():
    # earlier turns run the whole template; the last runs a new one holding only the cut tree
    source = '{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" .Prompt }}'
    with pytest.raises(TemplateExecError, match='template "x" not defined'):
        run(source, TemplateValues(messages=(M("user", "a"), M("assistant", "b"), M("user", "c"))))
