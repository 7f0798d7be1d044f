"""The Go text/template subset, rendered as Go renders it (expected outputs follow Go's rules)."""

from __future__ import annotations

import datetime as dt

import pytest

from vllama.serving.gotemplate import (
    NO_VALUE,
    GoList,
    GoMap,
    GoStruct,
    GoTemplate,
    TemplateExecError,
    TemplateParseError,
    go_format_float,
    go_json,
    go_print,
)


def render(source: str, data=None, **kw) -> str:
    return GoTemplate.parse(source).execute({} if data is None else data, **kw)


def msg(role: str, content: str) -> GoStruct:
    return GoStruct("*template.templateMessage", {"Role": role, "Content": content})


CONVERSATION = {"Messages": GoList([msg("user", "Hi"), msg("assistant", "Hello!"),
                                    msg("user", "Bye")])}


# -- text, actions, whitespace ------------------------------------------------------------------

def test_text_and_fields():
    assert render("Hello {{ .Name }}!", {"Name": "Ada"}) == "Hello Ada!"
    assert render("{{.A.B}}", {"A": {"B": "deep"}}) == "deep"


def test_trim_markers_eat_all_adjacent_whitespace():
    assert render("a  \n\t {{- .X -}} \n\n b", {"X": "x"}) == "axb"
    assert render("a {{- .X }} b", {"X": "x"}) == "ax b"
    assert render("a {{ .X -}} \n b", {"X": "x"}) == "a xb"


def test_a_dash_without_a_space_is_a_number_not_a_trim_marker():
    assert render("a {{-3}} b") == "a -3 b"


def test_comments_render_nothing_and_can_trim():
    assert render("a {{/* note */}} b") == "a  b"
    assert render("a {{- /* note */ -}} b") == "ab"
    assert render("{{/* a\nmultiline\ncomment */}}x") == "x"


def test_missing_map_key_prints_no_value_and_is_false():
    assert render("[{{ .Nope }}]") == "[<no value>]"
    assert render("{{ if .Nope }}yes{{ else }}no{{ end }}") == "no"
    # with Ollama's missingkey=zero a missing key is a nil interface, which cannot be looked into
    with pytest.raises(TemplateExecError, match=r"at <\.Nope\.Deeper>: nil pointer evaluating interface \{\}\.Deeper"):
        render("{{ .Nope.Deeper }}")
    assert render("{{ $x := .Nope }}{{ $x.Deeper }}") == "<no value>"  # a pipeline unwraps it
    assert render("{{ .Nope.Deeper }}", missing_zero=False) == "<no value>"


def test_literals_print_as_go_prints_them():
    assert render('{{ "a\\tb" }}|{{ `raw\\n` }}|{{ 42 }}|{{ 1.5 }}|{{ 1e6 }}|{{ true }}|{{ \'a\' }}|{{ 0x10 }}') == \
        "a\tb|raw\\n|42|1.5|1e+06|true|97|16"


def test_go_printing_of_collections_and_structs():
    assert go_print([1, "a", None]) == "[1 a <nil>]"
    assert go_print({"b": 2, "a": 1}) == "map[a:1 b:2]"
    assert go_print(GoStruct("T", {"A": "x", "B": [1, 2]})) == "{x [1 2]}"
    assert go_print(msg("user", "hi")) == "{user hi}"  # a template prints *T as T
    assert go_print(NO_VALUE) == "<no value>"
    assert go_print(GoList(["a"], string=lambda v: "custom")) == "custom"


@pytest.mark.parametrize("value,text", [(1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"),
                                        (0.0001, "0.0001"), (0.00001, "1e-05"), (3.0, "3"), (-2.5, "-2.5")])
def test_floats_print_as_fmt_v(value, text):
    assert go_format_float(value) == text


# -- control structures -------------------------------------------------------------------------

def test_if_else_if_else():
    source = '{{ if eq .N 1 }}one{{ else if eq .N 2 }}two{{ else if eq .N 3 }}three{{ else }}many{{ end }}'
    assert [render(source, {"N": n}) for n in (1, 2, 3, 9)] == ["one", "two", "three", "many"]


def test_truth_follows_go():
    source = "{{ if . }}T{{ else }}F{{ end }}"
    assert [GoTemplate.parse(source).execute(v) for v in
            ("", "x", 0, 2, 0.0, [], [0], {}, {"a": 1}, None, False, GoStruct("T", {}))] == \
        ["F", "T", "F", "T", "F", "F", "T", "F", "T", "F", "F", "T"]


def test_with_sets_dot_and_has_else_and_else_with():
    assert render("{{ with .A }}[{{ . }}]{{ else }}none{{ end }}", {"A": "x"}) == "[x]"
    assert render("{{ with .A }}[{{ . }}]{{ else }}none{{ end }}", {"A": ""}) == "none"
    assert render("{{ with .A }}a{{ else with .B }}{{ . }}{{ end }}", {"A": "", "B": "b"}) == "b"


def test_range_over_messages_with_dot_and_with_index_and_value():
    assert render("{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}", CONVERSATION) == \
        "user:Hi;assistant:Hello!;user:Bye;"
    assert render("{{ range $i, $m := .Messages }}{{ $i }}={{ $m.Content }} {{ end }}", CONVERSATION) == \
        "0=Hi 1=Hello! 2=Bye "
    assert render("{{ range $m := .Messages }}{{ $m.Role }} {{ end }}", CONVERSATION) == \
        "user assistant user "


def test_range_else_maps_in_key_order_and_integers():
    assert render("{{ range .L }}x{{ else }}empty{{ end }}", {"L": []}) == "empty"
    assert render("{{ range .Nope }}x{{ else }}empty{{ end }}") == "empty"
    assert render("{{ range $k, $v := .M }}{{ $k }}={{ $v }} {{ end }}", {"M": {"b": 2, "a": 1, "c": 3}}) == \
        "a=1 b=2 c=3 "
    assert render("{{ range 3 }}{{ . }}{{ end }}") == "012"


def test_break_and_continue():
    source = ('{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}'
              '{{ . }}{{ end }}')
    assert render(source, {"L": [1, 2, 3, 4, 5]}) == "13"


def test_last_message_idiom():
    source = ('{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}'
              '{{ .Content }}{{ if $last }}<END>{{ else }}|{{ end }}{{ end }}')
    assert render(source, CONVERSATION) == "Hi|Hello!|Bye<END>"


def test_variables_declare_assign_and_scope():
    source = ('{{ $x := "outer" }}{{ range .L }}{{ $x = . }}{{ $y := "inner" }}{{ end }}{{ $x }}'
              '{{ if true }}{{ $z := 1 }}{{ $z }}{{ end }}')
    assert render(source, {"L": ["a", "b"]}) == "b1"
    with pytest.raises(TemplateParseError, match='undefined variable "\\$z"'):
        GoTemplate.parse("{{ if true }}{{ $z := 1 }}{{ end }}{{ $z }}")


def test_dollar_is_the_root_inside_range_and_with():
    assert render("{{ range .L }}{{ $.Name }}{{ . }} {{ end }}", {"L": [1, 2], "Name": "n"}) == "n1 n2 "


# -- functions and pipelines --------------------------------------------------------------------

def test_comparisons():
    assert render('{{ eq .R "user" }} {{ ne .R "user" }} {{ eq .R "a" "b" "user" }}', {"R": "user"}) == \
        "true false true"
    assert render("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 3 2 }}") == "true true false true"
    assert render('{{ eq .Nope "x" }}') == "false"


def test_and_or_return_an_operand_and_short_circuit():
    assert render('{{ and 1 "" 3 }}|{{ and 1 2 }}|{{ or "" 0 }}|{{ or "" "b" }}') == "|2|0|b"
    # `and` stops before the failing index; `or` before the failing field access
    assert render("{{ and .L (index .L 5) }}", {"L": []}) == "[]"
    assert render("{{ or true (index .L 5) }}", {"L": []}) == "true"
    assert render("{{ not .A }} {{ not .B }}", {"A": "", "B": "x"}) == "true false"


def test_len_index_slice():
    data = {"L": ["a", "b", "c"], "S": "héllo", "M": {"k": "v"}}
    assert render("{{ len .L }} {{ len .S }} {{ len .M }}", data) == "3 6 1"
    assert render("{{ index .L 1 }} {{ index .M \"k\" }} {{ index .M \"z\" }}", data) == "b v <no value>"
    assert render("{{ slice .L 1 }} {{ slice .L 0 2 }} {{ slice .S 0 1 }}", data) == "[b c] [a b] h"


def test_pipelines_pass_the_value_as_the_last_argument():
    assert render('{{ "x" | printf "%s-%s" "a" }}') == "a-x"
    assert render('{{ .A | eq "a" }}', {"A": "a"}) == "true"
    assert render('{{ .L | len | printf "%d items" }}', {"L": [1, 2]}) == "2 items"


def test_parenthesised_pipelines_and_field_chains_on_them():
    assert render("{{ (index .Messages 1).Content }}", CONVERSATION) == "Hello!"
    assert render("{{ (len .Messages) }}", CONVERSATION) == "3"


def test_print_printf_println_html_urlquery():
    assert render('{{ print "a" 1 2 "b" }}') == "a1 2b"
    assert render('{{ printf "%v|%q|%5.2f|%x|%t" 3 "hi" 3.14159 255 true }}') == '3|"hi"| 3.14|ff|true'
    assert render('{{ println "a" 1 }}') == "a 1\n"
    assert render('{{ html "<a href=\'x\'>&</a>" }}') == "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    assert render('{{ urlquery "a b&c" }}') == "a+b%26c"


def test_json_is_go_json_marshal():
    data = {"V": {"b": [1, 2.5, None], "a": "<tag> & \"q\"\n", "c": True}}
    assert render("{{ json .V }}", data) == \
        '{"a":"\\u003ctag\\u003e \\u0026 \\"q\\"\\n","b":[1,2.5,null],"c":true}'
    assert go_json(1e21) == "1e+21" and go_json(1e20) == "100000000000000000000"
    assert go_json(GoList(nil=True)) == "null" and go_json(GoList()) == "[]"
    tagged = GoStruct("T", {"Name": "n", "Opt": ""}, json_names={"Name": ("name", False),
                                                              "Opt": ("opt", True)})
    assert go_json(tagged) == '{"name":"n"}'


def test_current_date_uses_today():
    assert render("{{ currentDate }} {{ yesterdayDate }}", today=dt.date(2026, 3, 1)) == \
        "2026-03-01 2026-02-28"


def test_nil_values_print_as_go_prints_them():
    # an action's nil interface is "no value"; handed to fmt it is <nil>; inside a slice <nil>
    data = {"M": GoMap({"a": 1}), "X": None, "L": [1, None]}
    assert render("{{ .M.z }}|{{ .X }}|{{ print .X }}|{{ .X | print }}|{{ .L }}|{{ index .L 1 }}", data) == \
        "<no value>|<no value>|<nil>|<nil>|[1 <nil>]|<no value>"
    assert render("{{ json .X }}|{{ html .X }}|{{ printf \"%s|%v|%d\" .X .X .X }}", data) == \
        "null|&lt;no value&gt;|%!s(<nil>)|<nil>|%!d(<nil>)"


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("source,message", [
    ("{{ .Prompt ", "unclosed action"),
    ("{{ if .X }}no end", "unexpected EOF"),
    ("{{ end }}", "unexpected {{end}}"),
    ("{{ undefined_fn .X }}", 'function "undefined_fn" not defined'),
    ("{{ $nope }}", 'undefined variable "$nope"'),
    ("{{ break }}", "{{break}} outside {{range}}"),
    ("{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}", "unexpected <define> in command"),
    ('{{define "x"}}1{{end}}{{block "x" .}}2{{end}}', 'multiple definition of template "x"'),
    ("{{ .A | \"x\" }}", "non executable command in pipeline stage 2"),
    ("{{ \"unterminated }}", "unterminated quoted string"),
    ("{{/* open", "unclosed comment"),
    ("{{ ( .A }}", "unclosed left paren"),
])
def test_parse_errors(source, message):
    with pytest.raises(TemplateParseError, match=message.replace("(", "\\(").replace("|", "\\|")
                       .replace("{", "\\{").replace("}", "\\}").replace("$", "\\$")):
        GoTemplate.parse(source)


def test_define_template_and_block():
    assert render('{{ define "sys" }}<s>{{ . }}|{{ $ }}</s>{{ end }}{{ template "sys" .A }}', {"A": "a"}) == \
        "<s>a|a</s>"
    assert render('{{ block "b" .A }}[{{ . }}]{{ end }}', {"A": "a"}) == "[a]"
    assert render('{{ template "x" }}{{ define "x" }}X{{ end }}') == "X"
    recursive = ('{{ define "r" }}{{ if . }}{{ . }}{{ template "r" (slice . 1) }}{{ end }}{{ end }}'
                 '{{ template "r" "abc" }}')
    assert render(recursive) == "abcbcc"
    with pytest.raises(TemplateExecError, match='template "nope" not defined'):
        render('{{ template "nope" . }}')
    with pytest.raises(TemplateParseError, match='undefined variable "\\$v"'):
        GoTemplate.parse('{{ $v := 1 }}{{ define "x" }}{{ $v }}{{ end }}')


def test_parse_errors_name_the_line():
    with pytest.raises(TemplateParseError, match=r"^template: :3: "):
        GoTemplate.parse("a\nb\n{{ nofunc }}")


def test_execution_errors():
    with pytest.raises(TemplateExecError, match="can't evaluate field Nope in type \\*template.templateMessage"):
        render("{{ range .Messages }}{{ .Nope }}{{ end }}", CONVERSATION)
    with pytest.raises(TemplateExecError, match="error calling eq: incompatible types for comparison"):
        render('{{ eq 1 "1" }}')
    with pytest.raises(TemplateExecError, match="error calling index: index out of range: 3"):
        render("{{ index .L 3 }}", {"L": [1, 2, 3]})
    with pytest.raises(TemplateExecError, match="can't give argument to non-function"):
        render('{{ "a" "b" }}')
    with pytest.raises(TemplateExecError, match='"json" is not a defined function'):
        render("{{ json . }}", funcs={})


def test_vars_are_the_lowercased_names_ollama_looks_for():
    template = GoTemplate.parse('{{ if .System }}{{ .System }}{{ end }}'
                                '{{ range $i, $m := .Messages }}{{ $m.Role }}{{ end }}')
    assert template.vars() == {"system", "messages", "$m", "role"}
    assert GoTemplate.parse("{{ len (slice $.Messages 1) }}").vars() == {"$", "messages"}
    # as in Ollama, names behind a field chain on a parenthesised pipeline are not seen
    assert GoTemplate.parse("{{ (index .Messages 0).Content }}").vars() == set()
