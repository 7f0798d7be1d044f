"""Go `text/template`, the subset Ollama Modelfile templates are written in, rendered as Go would.

Ollama keeps a model's prompt format as a Go template (the TEMPLATE layer). This module lexes,
parses and executes such templates with Go's own rules, so that the text a model is given is the
same byte for byte: trim markers (`{{-`, `-}}`), comments, pipelines (`|`), variables (`$x :=`,
`$x =`, `$`), parenthesised sub-pipelines with field chains, `if`/`else if`/`else`, `with`/`else
with`, `range` (slices, maps in key order, integers; `$i, $v :=`; `else`; `break`/`continue`),
Go's builtin functions (`and or not len index slice eq ne lt le gt ge print printf println html
urlquery js`) and the functions Ollama adds (`json`, `currentDate`, `yesterdayDate`,
`toTypeScriptType`), and named templates (`define`, `template`, `block`). Unsupported: the
builtin `call` (an error when called: template data holds no functions).

Fidelity: checked against Go's own text/template on generated templates: outputs and failures
agree, and so does the wording of errors (one known exception: `slice` with an index taken out of
a JSON map names its dynamic type where Go says `interface {}`).

Values are Python values with Go meaning: `str`, `bool`, `int`, `float`, `None` (a nil interface),
`list` (a slice), `dict` (a map), plus `GoStruct`, `GoList` and `GoMap` for Go values whose type
carries behaviour (struct fields, a `String()` method, a custom JSON form). A top-level `dict`
answers a missing key with `NO_VALUE`, which prints `<no value>` as Go's map[string]any does.

Errors: `TemplateError` (with `TemplateParseError` and `TemplateExecError`); the message reads as
Go's does (`template: :1:5: executing "" at <.X>: ...`), which is what Ollama puts in its 500 answers.
"""

from .funcs import OLLAMA_FUNC_NAMES, ollama_funcs
from .nodes import (
    ActionNode,
    BranchNode,
    CommandNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    PipeNode,
    RangeNode,
    VariableNode,
    WithNode,
)
from .template import GoTemplate, identifiers
from .values import (
    NO_VALUE,
    GoList,
    GoMap,
    GoStruct,
    TemplateError,
    TemplateExecError,
    TemplateParseError,
    go_format_float,
    go_json,
    go_print,
    truth,
)

__all__ = [
    "NO_VALUE", "OLLAMA_FUNC_NAMES", "ActionNode", "BranchNode", "CommandNode", "FieldNode",
    "GoList", "GoMap", "GoStruct", "GoTemplate", "IfNode", "ListNode", "Node", "PipeNode",
    "RangeNode", "TemplateError", "TemplateExecError", "TemplateParseError", "VariableNode",
    "WithNode", "go_format_float", "go_json", "go_print", "identifiers", "ollama_funcs", "truth",
]
