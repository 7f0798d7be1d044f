"""Go `text/template`, the subset Ollama Modelfile templates are written in, rendered as Go would.

Ollama keeps a model's prompt format as a Go template (the TEMPLATE layer). This module lexes,
parses and executes such templates with Go's own rules, so that the text a model is given is the
same byte for byte: trim markers (`{{-`, `-}}`), comments, pipelines (`|`), variables (`$x :=`,
`$x =`, `$`), parenthesised sub-pipelines with field chains, `if`/`else if`/`else`, `with`/`else
with`, `range` (slices, maps in key order, integers; `$i, $v :=`; `else`; `break`/`continue`),
Go's builtin functions (`and or not len index slice eq ne lt le gt ge print printf println html
urlquery`) and the functions Ollama adds (`json`, `currentDate`, `yesterdayDate`,
`toTypeScriptType`). `define`, `template` and `block` are refused at parse time (no Modelfile
template in Ollama's library uses them).

Values are Python values with Go meaning: `str`, `bool`, `int`, `float`, `None` (a nil interface),
`list` (a slice), `dict` (a map), plus `GoStruct`, `GoList` and `GoMap` for Go values whose type
carries behaviour (struct fields, a `String()` method, a custom JSON form). A top-level `dict`
answers a missing key with `NO_VALUE`, which prints `<no value>` as Go's map[string]any does.

Errors: `TemplateError` (with `TemplateParseError` and `TemplateExecError`); the message reads as
Go's does (`template: :1:5: ...`), which is what Ollama puts in its 500 answers.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import math
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class TemplateError(Exception):
    """A template Go would refuse to parse or execute; `message` is Go's wording."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TemplateParseError(TemplateError):
    """The template text is not a valid Go template (Ollama: 400 on create, 500 on a request)."""


class TemplateExecError(TemplateError):
    """The template failed while rendering (a missing struct field, a bad comparison, ...)."""


class _NoValue:
    """Go's invalid reflect.Value: a missing map key or a field of a nil value."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


@dataclass
class GoStruct:
    """A Go struct (or pointer to one): named fields in declaration order.

    `json_names` gives each field's JSON key and whether it is `omitempty` (no entry: the Go field
    name, always written); `string` is the type's `String()` method, if it has one.
    """

    type_name: str
    fields: dict[str, Any]
    json_names: dict[str, tuple[str, bool]] | None = None
    string: Callable[[GoStruct], str] | None = None
    pointer: bool = False  # a *T: fmt writes &{...}


class GoList(list):
    """A Go slice of a named type: may be nil (prints and marshals as Go's nil slice does) and may
    carry `String()` and `MarshalJSON()` methods."""

    def __init__(self, items: Any = (), *, nil: bool = False,
                 string: Callable[[GoList], str] | None = None,
                 marshal: Callable[[GoList], Any] | None = None):
        super().__init__(items)
        self.nil = nil
        self.string = string
        self.marshal = marshal


class GoMap(dict):
    """A Go map of a named type: may be nil and may carry a `String()` method."""

    def __init__(self, items: Any = (), *, nil: bool = False,
                 string: Callable[[GoMap], str] | None = None):
        super().__init__(items)
        self.nil = nil
        self.string = string


# ---------------------------------------------------------------------------------------------
# Printing and JSON, as fmt.Fprint and encoding/json write Go values
# ---------------------------------------------------------------------------------------------


def _float_digits(f: float) -> tuple[str, int]:
    """Shortest decimal digits of f and the exponent of its first digit (d.ddd x 10^exp)."""
    sign, digits, exponent = Decimal(repr(f)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exp = len(digits) + int(exponent) - 1
    return text, exp


def go_format_float(f: float) -> str:
    """fmt's %v of a float64: strconv's 'g' at shortest precision, so the exponent form below
    1e-4 and from 1e6 (1e+06, 1.5e-05), as Go writes it."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    digits, exp = _float_digits(abs(f))
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + _plain_decimal(digits, exp)


def _plain_decimal(digits: str, exp: int) -> str:
    if exp < 0:
        return "0." + "0" * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return digits + "0" * (exp + 1 - len(digits))
    return digits[: exp + 1] + "." + digits[exp + 1:]


def _json_float(f: float) -> str:
    """encoding/json's float64: 'f' form, 'e' form below 1e-6 or from 1e21 (e-7, not e-07)."""
    if math.isnan(f) or math.isinf(f):
        raise TemplateExecError(f"json: unsupported value: {go_format_float(f)}")
    if f == 0:
        return "0" if math.copysign(1, f) > 0 else "-0"
    sign = "-" if f < 0 else ""
    digits, exp = _float_digits(abs(f))
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return sign + _plain_decimal(digits, exp)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
                 "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _JSON_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":  # a lone surrogate: Go writes U+FFFD
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_empty(value: Any) -> bool:
    """encoding/json's omitempty test."""
    if value is None or value is NO_VALUE:
        return True
    if isinstance(value, (str, list, dict, tuple)):
        return len(value) == 0
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value == 0
    return False


def go_json(value: Any) -> str:
    """json.Marshal of a Go value: compact, HTML-safe escapes, map keys sorted, struct fields in
    order."""
    if value is None or value is NO_VALUE:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, GoStruct):
        parts = []
        for name, item in value.fields.items():
            key, omitempty = (value.json_names or {}).get(name, (name, False))
            if value.json_names is not None and name not in value.json_names:
                continue  # json:"-"
            if omitempty and _is_empty(item):
                continue
            parts.append(f"{_json_string(key)}:{go_json(item)}")
        return "{" + ",".join(parts) + "}"
    if isinstance(value, GoList):
        if value.marshal is not None:
            return go_json(value.marshal(value))
        if value.nil:
            return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, GoMap) and value.nil:
        return "null"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(v)}" for k, v in items) + "}"
    raise TemplateExecError(f"json: unsupported type: {type(value).__name__}")


def _map_keys(m: dict) -> list:
    """Go's order for map keys (fmt and range): numbers numerically, strings lexically."""
    return sorted(m.keys(), key=lambda k: (isinstance(k, str), k))


def go_print(value: Any, nested: bool = False) -> str:
    """fmt.Fprint of one value, as `{{ x }}` writes it."""
    if value is NO_VALUE:
        return "<no value>" if not nested else "<invalid reflect.Value>"
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, GoStruct):
        if value.string is not None:
            return value.string(value)
        body = "{" + " ".join(go_print(v, True) for v in value.fields.values()) + "}"
        return "&" + body if value.pointer else body
    if isinstance(value, GoList) and value.string is not None:
        return value.string(value)
    if isinstance(value, GoMap) and value.string is not None:
        return value.string(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_print(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_print(k, True)}:{go_print(value[k], True)}"
                                 for k in _map_keys(value)) + "]"
    raise TemplateExecError(f"can't print value of type {type(value).__name__}")


def _type_name(value: Any) -> str:
    if value is None or value is NO_VALUE:
        return "<nil>"
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go template truth: false for zero values, nil and empty collections; structs are true."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, GoStruct):
        return True
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return True


# ---------------------------------------------------------------------------------------------
# Lexer (text/template/parse/lex.go)
# ---------------------------------------------------------------------------------------------

_SPACE = " \t\r\n"
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
             "template", "with"}


@dataclass
class _Item:
    typ: str  # text, left, right, space, field, variable, identifier, keyword, bool, number,
    # string, rawstring, char, charconst, pipe, assign, declare, lparen, rparen, dot, eof
    val: str
    pos: int
    line: int


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class _Lexer:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.items: list[_Item] = []
        self.paren_depth = 0

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def error(self, msg: str, pos: int | None = None) -> TemplateParseError:
        return TemplateParseError(f"template: :{self.line_at(self.pos if pos is None else pos)}: {msg}")

    def emit(self, typ: str, start: int, val: str | None = None) -> None:
        self.items.append(_Item(typ, self.text[start:self.pos] if val is None else val, start,
                                self.line_at(start)))

    def run(self) -> list[_Item]:
        text = self.text
        trim_next = False
        while True:
            start = self.pos
            at = text.find("{{", self.pos)
            end = len(text) if at < 0 else at
            chunk = text[start:end]
            if trim_next:
                stripped = chunk.lstrip(_SPACE)
                start += len(chunk) - len(stripped)
                chunk = stripped
                trim_next = False
            left_trim = at >= 0 and len(text) >= at + 4 and text[at + 2] == "-" and text[at + 3] in _SPACE
            if left_trim:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.items.append(_Item("text", chunk, start, self.line_at(start)))
            if at < 0:
                self.pos = len(text)
                self.emit("eof", self.pos, "")
                return self.items
            self.pos = at + 2
            self.emit("left", at, "{{")
            if left_trim:
                self.pos += 2
            trim_next = self.lex_action_or_comment()

    def at_right(self) -> tuple[bool, bool]:
        rest = self.text[self.pos:]
        if len(rest) >= 2 and rest[0] in _SPACE and rest[1] == "-" and rest[2:].startswith("}}"):
            return True, True
        return rest.startswith("}}"), False

    def lex_action_or_comment(self) -> bool:
        """Lex one action after its left delimiter; returns whether it ends with a trim marker."""
        text = self.text
        if text.startswith("/*", self.pos):
            end = text.find("*/", self.pos + 2)
            if end < 0:
                raise self.error("unclosed comment")
            self.pos = end + 2
            delim, trim = self.at_right()
            if not delim:
                raise self.error("comment ends before closing delimiter")
            self.items.pop()  # the left delimiter: a comment is dropped whole
            self.pos += 4 if trim else 2
            return trim
        while True:
            delim, trim = self.at_right()
            if delim:
                if self.paren_depth:
                    raise self.error("unclosed left paren")
                start = self.pos
                self.pos += 4 if trim else 2
                self.emit("right", start, "}}")
                return trim
            if self.pos >= len(text):
                raise self.error("unclosed action")
            ch = text[self.pos]
            start = self.pos
            if ch in _SPACE:
                n = 0
                while self.pos < len(text) and text[self.pos] in _SPACE:
                    self.pos += 1
                    n += 1
                rest = text[self.pos - 1:]
                if len(rest) >= 2 and rest[1] == "-" and rest[2:].startswith("}}"):
                    self.pos -= 1  # the last space belongs to the " -}}" marker
                    if n == 1:
                        continue
                self.emit("space", start)
            elif ch == "=":
                self.pos += 1
                self.emit("assign", start)
            elif ch == ":":
                if not text.startswith(":=", self.pos):
                    raise self.error("expected :=")
                self.pos += 2
                self.emit("declare", start)
            elif ch == "|":
                self.pos += 1
                self.emit("pipe", start)
            elif ch == '"':
                self.lex_quote()
            elif ch == "`":
                end = text.find("`", self.pos + 1)
                if end < 0:
                    raise self.error("unterminated raw quoted string")
                self.pos = end + 1
                self.emit("rawstring", start)
            elif ch == "'":
                self.lex_char()
            elif ch == "$":
                self.pos += 1
                while self.pos < len(text) and _is_alnum(text[self.pos]):
                    self.pos += 1
                self.emit("variable", start)
                self.check_terminator()
            elif ch == "." and self.pos + 1 < len(text) and text[self.pos + 1].isdigit():
                self.lex_number()
            elif ch == ".":
                self.pos += 1
                if self.pos < len(text) and _is_alnum(text[self.pos]):
                    while self.pos < len(text) and _is_alnum(text[self.pos]):
                        self.pos += 1
                    self.emit("field", start)
                    self.check_terminator()
                else:
                    self.emit("dot", start)
            elif ch in "+-" or ch.isdigit():
                self.lex_number()
            elif _is_alnum(ch):
                while self.pos < len(text) and _is_alnum(text[self.pos]):
                    self.pos += 1
                word = text[start:self.pos]
                if word in _KEYWORDS:
                    self.emit("keyword", start)
                elif word in ("true", "false"):
                    self.emit("bool", start)
                else:
                    self.emit("identifier", start)
                self.check_terminator()
            elif ch == "(":
                self.pos += 1
                self.paren_depth += 1
                self.emit("lparen", start)
            elif ch == ")":
                self.pos += 1
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    raise self.error("unexpected right paren")
                self.emit("rparen", start)
            elif ch.isprintable() and ord(ch) < 128:
                self.pos += 1
                self.emit("char", start)
            else:
                raise self.error(f"unrecognized character in action: {ch!r}")

    def check_terminator(self) -> None:
        if self.pos >= len(self.text):
            return
        ch = self.text[self.pos]
        if ch in _SPACE or ch in ".,|:)(" or self.text.startswith("}}", self.pos):
            return
        raise self.error(f"bad character {ch!r}")

    def lex_quote(self) -> None:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise self.error("unterminated quoted string")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\":
                if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                    raise self.error("unterminated quoted string")
                self.pos += 1
            elif ch == '"':
                break
        self.emit("string", start)

    def lex_char(self) -> None:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise self.error("unterminated character constant")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\":
                self.pos += 1
            elif ch == "'":
                break
        self.emit("charconst", start)

    def lex_number(self) -> None:
        start = self.pos
        text = self.text
        if text[self.pos] in "+-":
            self.pos += 1
        digits = "0123456789_"
        if text.startswith(("0x", "0X"), self.pos):
            self.pos += 2
            digits = "0123456789abcdefABCDEF_"
        elif text.startswith(("0o", "0O"), self.pos):
            self.pos += 2
            digits = "01234567_"
        elif text.startswith(("0b", "0B"), self.pos):
            self.pos += 2
            digits = "01_"
        while self.pos < len(text) and text[self.pos] in digits:
            self.pos += 1
        if self.pos < len(text) and text[self.pos] == ".":
            self.pos += 1
            while self.pos < len(text) and text[self.pos] in digits:
                self.pos += 1
        if digits.startswith("0123456789_") and self.pos < len(text) and text[self.pos] in "eE":
            self.pos += 1
            if self.pos < len(text) and text[self.pos] in "+-":
                self.pos += 1
            while self.pos < len(text) and text[self.pos] in "0123456789_":
                self.pos += 1
        if self.pos < len(text) and _is_alnum(text[self.pos]):
            self.pos += 1
            raise self.error(f"bad number syntax: {text[start:self.pos]!r}")
        self.emit("number", start)


# ---------------------------------------------------------------------------------------------
# Nodes (text/template/parse/node.go, the kinds Ollama's template code walks)
# ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    pos: int = 0
    line: int = 0


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class TextNode(Node):
    text: str = ""


@dataclass
class FieldNode(Node):
    ident: list[str] = field(default_factory=list)  # .A.B -> ["A", "B"]


@dataclass
class VariableNode(Node):
    ident: list[str] = field(default_factory=list)  # $x.A -> ["$x", "A"]


@dataclass
class DotNode(Node):
    pass


@dataclass
class NilNode(Node):
    pass


@dataclass
class BoolNode(Node):
    value: bool = False


@dataclass
class NumberNode(Node):
    value: int | float = 0
    text: str = ""


@dataclass
class StringNode(Node):
    value: str = ""
    quoted: str = ""


@dataclass
class IdentifierNode(Node):
    name: str = ""  # a function


@dataclass
class ChainNode(Node):
    node: Node | None = None  # (pipeline).A.B
    fields: list[str] = field(default_factory=list)


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)


@dataclass
class PipeNode(Node):
    decl: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)


@dataclass
class ActionNode(Node):
    pipe: PipeNode | None = None


@dataclass
class BranchNode(Node):
    pipe: PipeNode | None = None
    list: ListNode | None = None
    else_list: ListNode | None = None


@dataclass
class IfNode(BranchNode):
    pass


@dataclass
class WithNode(BranchNode):
    pass


@dataclass
class RangeNode(BranchNode):
    pass


@dataclass
class BreakNode(Node):
    pass


@dataclass
class ContinueNode(Node):
    pass


@dataclass
class _EndNode(Node):
    pass


@dataclass
class _ElseNode(Node):
    pass


# ---------------------------------------------------------------------------------------------
# Parser (text/template/parse/parse.go)
# ---------------------------------------------------------------------------------------------

_OPERAND_STARTS = {"bool", "charconst", "dot", "field", "identifier", "number", "rawstring",
                   "string", "variable", "lparen"}


def _unquote(quoted: str) -> str:
    """A Go interpreted string literal's value (the escapes Go and JSON share, plus \\x, \\a...)."""
    body = quoted[1:-1]
    out = []
    i = 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", "'": "'", '"': '"'}
    raw = bytearray()

    def flush() -> None:
        if raw:
            out.append(raw.decode("utf-8", errors="replace"))
            raw.clear()

    while i < len(body):
        ch = body[i]
        if ch != "\\":
            flush()
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in simple:
            flush()
            out.append(simple[esc])
            i += 2
        elif esc == "x":
            raw.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif esc in "01234567":
            raw.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif esc == "u":
            flush()
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif esc == "U":
            flush()
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            raise ValueError(f"invalid escape \\{esc}")
    flush()
    return "".join(out)


def _parse_number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        pass
    if clean.lower().startswith(("0x", "-0x", "+0x")):
        return float.fromhex(clean)
    return float(clean)


class _Parser:
    def __init__(self, text: str, funcs: set[str]):
        self.lexer = _Lexer(text)
        self.items = self.lexer.run()
        self.i = 0
        self.funcs = funcs
        self.vars = ["$"]
        self.range_depth = 0

    # token stream
    def next(self) -> _Item:
        item = self.items[self.i]
        self.i += 1
        return item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> _Item:
        return self.items[self.i]

    def next_non_space(self) -> _Item:
        item = self.next()
        while item.typ == "space":
            item = self.next()
        return item

    def peek_non_space(self) -> _Item:
        item = self.next_non_space()
        self.backup()
        return item

    def error(self, msg: str, item: _Item | None = None) -> TemplateParseError:
        line = (item or self.items[max(self.i - 1, 0)]).line
        return TemplateParseError(f"template: :{line}: {msg}")

    def unexpected(self, item: _Item, context: str) -> TemplateParseError:
        if item.typ == "eof":
            return self.error(f"unexpected EOF in {context}", item)
        what = {"right": "}}", "left": "{{"}.get(item.typ, item.val)
        return self.error(f"unexpected {_quote_item(item, what)} in {context}", item)

    def expect(self, typ: str, context: str) -> _Item:
        item = self.next_non_space()
        if item.typ != typ:
            raise self.unexpected(item, context)
        return item

    # grammar
    def parse(self) -> ListNode:
        root = ListNode()
        while self.peek().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                raise self.error(f"unexpected {{{{{'end' if isinstance(node, _EndNode) else 'else'}}}}}")
            root.nodes.append(node)
        return root

    def text_or_action(self) -> Node:
        item = self.next_non_space()
        if item.typ == "text":
            return TextNode(item.pos, item.line, item.val)
        if item.typ == "left":
            return self.action()
        raise self.unexpected(item, "input")

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode()
        while self.peek_non_space().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                return lst, node
            lst.nodes.append(node)
        raise self.error("unexpected EOF")

    def action(self) -> Node:
        item = self.peek_non_space()
        if item.typ == "keyword":
            self.next_non_space()
            word = item.val
            if word == "if":
                return self.control(IfNode, "if")
            if word == "range":
                return self.control(RangeNode, "range")
            if word == "with":
                return self.control(WithNode, "with")
            if word == "end":
                self.expect("right", "end")
                return _EndNode(item.pos, item.line)
            if word == "else":
                peek = self.peek_non_space()
                if peek.typ == "keyword" and peek.val in ("if", "with"):
                    return _ElseNode(item.pos, item.line)  # "else if": the keyword stays
                self.expect("right", "else")
                return _ElseNode(item.pos, item.line)
            if word in ("break", "continue"):
                self.expect("right", word)
                if self.range_depth == 0:
                    raise self.error(f"{{{{{word}}}}} outside {{{{range}}}}", item)
                return (BreakNode if word == "break" else ContinueNode)(item.pos, item.line)
            if word in ("define", "template", "block"):
                raise self.error(f"{{{{{word}}}}} is not supported by vllama's template renderer", item)
            self.backup()  # nil: an operand
        pipe = self.pipeline("command", "right")
        return ActionNode(item.pos, item.line, pipe)

    def control(self, cls: type[BranchNode], context: str) -> BranchNode:
        mark = len(self.vars)
        start = self.items[self.i - 1]
        pipe = self.pipeline(context, "right")
        if context == "range":
            self.range_depth += 1
        lst, nxt = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_list = None
        if isinstance(nxt, _ElseNode):
            peek = self.peek_non_space()
            if context == "if" and peek.typ == "keyword" and peek.val == "if":
                self.next_non_space()
                else_list = ListNode(nxt.pos, nxt.line, [self.control(IfNode, "if")])
            elif context == "with" and peek.typ == "keyword" and peek.val == "with":
                self.next_non_space()
                else_list = ListNode(nxt.pos, nxt.line, [self.control(WithNode, "with")])
            else:
                else_list, nxt = self.item_list()
                if not isinstance(nxt, _EndNode):
                    raise self.error("expected end; found {{else}}")
        del self.vars[mark:]
        return cls(start.pos, start.line, pipe, lst, else_list)

    def pipeline(self, context: str, end: str) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        # declarations: $x := / $x = / $i, $v :=
        while True:
            v = self.peek_non_space()
            if v.typ != "variable":
                break
            self.next_non_space()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in ("assign", "declare"):
                pipe.is_assign = nxt.typ == "assign"
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.line, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.typ == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.line, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "right", "rparen"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            # not a declaration: give the variable back
            self.backup(2 if after.typ == "space" else 1)
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                if not pipe.cmds:
                    raise self.error(f"missing value for {context}", token)
                for i, cmd in enumerate(pipe.cmds[1:], start=1):
                    if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                        raise self.error(f"non executable command in pipeline stage {i + 1}", token)
                return pipe
            if token.typ in _OPERAND_STARTS or (token.typ == "keyword" and token.val == "nil"):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def command(self) -> CommandNode:
        start = self.peek_non_space()
        cmd = CommandNode(start.pos, start.line)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == "space":
                continue
            if token.typ in ("right", "rparen"):
                self.backup()
            elif token.typ == "pipe":
                pass
            else:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == "field":
            fields = []
            while self.peek().typ == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(node.pos, node.line, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(node.pos, node.line, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise self.error("unexpected . after term")
            return ChainNode(node.pos, node.line, node, fields)
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == "identifier":
            if token.val not in self.funcs:
                raise self.error(f'function "{token.val}" not defined', token)
            return IdentifierNode(token.pos, token.line, token.val)
        if typ == "dot":
            return DotNode(token.pos, token.line)
        if typ == "keyword" and token.val == "nil":
            return NilNode(token.pos, token.line)
        if typ == "variable":
            if token.val not in self.vars:
                raise self.error(f'undefined variable "{token.val}"', token)
            return VariableNode(token.pos, token.line, [token.val])
        if typ == "field":
            return FieldNode(token.pos, token.line, [token.val[1:]])
        if typ == "bool":
            return BoolNode(token.pos, token.line, token.val == "true")
        if typ == "number":
            try:
                return NumberNode(token.pos, token.line, _parse_number(token.val), token.val)
            except ValueError:
                raise self.error(f"illegal number syntax: {token.val!r}", token) from None
        if typ == "charconst":
            try:
                value = _unquote('"' + token.val[1:-1].replace('"', '\\"') + '"')
            except (ValueError, IndexError):
                raise self.error(f"malformed character constant: {token.val}", token) from None
            if len(value) != 1:
                raise self.error(f"malformed character constant: {token.val}", token)
            return NumberNode(token.pos, token.line, ord(value), token.val)
        if typ == "lparen":
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            return pipe
        if typ == "string":
            try:
                return StringNode(token.pos, token.line, _unquote(token.val), token.val)
            except (ValueError, IndexError):
                raise self.error(f"invalid syntax: {token.val}", token) from None
        if typ == "rawstring":
            return StringNode(token.pos, token.line, token.val[1:-1].replace("\r", ""), token.val)
        self.backup()
        return None


def _quote_item(item: _Item, what: str) -> str:
    if item.typ in ("right", "left", "rparen", "lparen", "pipe", "char", "assign", "declare"):
        return f'"{what}"'
    if item.typ == "space":
        return "space"
    return f"<{what}>"


# ---------------------------------------------------------------------------------------------
# Builtin functions (text/template/funcs.go) and Ollama's (template/template.go)
# ---------------------------------------------------------------------------------------------


class _Lazy:
    """An argument of `and`/`or`, evaluated only when reached (Go short-circuits them)."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn


def _basic_kind(v: Any) -> str:
    if v is None or v is NO_VALUE:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(arg1: Any, *rest: Any) -> bool:
    if not rest:
        raise TemplateExecError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in rest:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if k1 != "invalid" and k2 != "invalid":
                raise TemplateExecError("incompatible types for comparison")
            continue  # nil never equals a value
        if k1 == "other":
            if isinstance(arg1, (list, dict)) or isinstance(arg, (list, dict)):
                raise TemplateExecError(f"non-comparable types {_type_name(arg1)}, {_type_name(arg)}")
            if arg1 is arg:
                return True
            continue
        if k1 == "invalid" or arg1 == arg:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka != kb:
        raise TemplateExecError("incompatible types for comparison")
    if ka not in ("int", "float", "string"):
        raise TemplateExecError("invalid type for comparison")
    return a < b


def _len(item: Any) -> int:
    if item is None or item is NO_VALUE:
        raise TemplateExecError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8"))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise TemplateExecError(f"len of type {_type_name(item)}")


def _index_of(value: Any, length: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateExecError(f"cannot index slice/array with type {_type_name(value)}")
    if value < 0 or value >= length:
        raise TemplateExecError(f"index out of range: {value}")
    return value


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise TemplateExecError("index of untyped nil")
    for index in indexes:
        if isinstance(item, str):
            item = item.encode("utf-8")[_index_of(index, len(item.encode("utf-8")))]
        elif isinstance(item, (list, tuple)):
            item = item[_index_of(index, len(item))]
        elif isinstance(item, dict):
            item = item.get(index, NO_VALUE if not isinstance(item, GoMap) else None)
        elif item is None or item is NO_VALUE:
            raise TemplateExecError("index of untyped nil")
        else:
            raise TemplateExecError(f"can't index item of type {_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise TemplateExecError("slice of untyped nil")
    if len(indexes) > 3:
        raise TemplateExecError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise TemplateExecError("cannot 3-index slice a string")
        data = item.encode("utf-8")
    elif isinstance(item, (list, tuple)):
        data = item
    else:
        raise TemplateExecError(f"can't slice item of type {_type_name(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes[:2]):
        if isinstance(index, bool) or not isinstance(index, int):
            raise TemplateExecError(f"cannot index slice/array with type {_type_name(index)}")
        if index < 0 or index > len(data):
            raise TemplateExecError(f"index out of range: {index}")
        bounds[i] = index
    if bounds[0] > bounds[1]:
        raise TemplateExecError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    part = data[bounds[0]:bounds[1]]
    if isinstance(item, str):
        return part.decode("utf-8", errors="replace")
    return GoList(part) if isinstance(item, GoList) else list(part)


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(arg))
    return "".join(out)


def _sprintln(*args: Any) -> str:
    return " ".join(go_print(a) for a in args) + "\n"


def _sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use (%s %v %d %q %f %g %t %x %%), flags and widths
    passed through Python's printf where they agree."""
    out = []
    i = 0
    n = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "+-# 0123456789.":
            j += 1
        if j >= len(fmt):
            out.append("%!(NOVERB)")
            break
        spec, verb = fmt[i + 1:j], fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[n]
        n += 1
        if verb in "sv":
            out.append(("%" + spec + "s") % go_print(arg))
        elif verb == "q":
            out.append(go_json(go_print(arg)) if not isinstance(arg, str) else _json_string(arg))
        elif verb in "dxXob" and isinstance(arg, int) and not isinstance(arg, bool):
            out.append(("%" + spec + ("d" if verb == "d" else verb)) % arg if verb != "b"
                       else format(arg, "b"))
        elif verb in "feE" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            out.append(("%" + spec + verb) % arg)
        elif verb in "gG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            out.append(go_format_float(float(arg)))
        elif verb == "t" and isinstance(arg, bool):
            out.append("true" if arg else "false")
        else:
            out.append(f"%!{verb}({_type_name(arg)}={go_print(arg)})")
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_type_name(a)}={go_print(a)}" for a in args[n:]) + ")")
    return "".join(out)


def _html(*args: Any) -> str:
    s = _sprint(*args)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&#34;").replace("\0", "\ufffd"))


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_sprint(*args), safe="")


def _typescript_type(prop: Any) -> str:
    """Ollama's ToolProperty.ToTypeScriptType."""
    if not isinstance(prop, GoStruct) or "AnyOf" not in prop.fields:
        return "any"
    any_of = prop.fields.get("AnyOf") or []
    if any_of:
        return " | ".join(_typescript_type(p) for p in any_of)
    types = list(prop.fields.get("Type") or [])
    mapping = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean",
               "array": "any[]", "object": "Record<string, any>", "null": "null"}
    if not types:
        return "any"
    return " | ".join(mapping.get(t, "any") for t in types)


BUILTINS: dict[str, Callable[..., Any]] = {
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _lt,
    "le": lambda a, b: _lt(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_lt(a, b) or _eq(a, b)),
    "ge": lambda a, b: not _lt(a, b),
    "not": lambda a: not truth(a),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _sprintf,
    "println": _sprintln,
    "html": _html,
    "urlquery": _urlquery,
}
_LAZY = {"and", "or"}
_UNSUPPORTED = {"js", "call"}


def ollama_funcs(today: _dt.date | None = None) -> dict[str, Callable[..., Any]]:
    """The functions Ollama's template package adds; `today` fixes currentDate (tests)."""

    def current(*_: Any) -> str:
        return (today or _dt.date.today()).isoformat()

    def yesterday(*_: Any) -> str:
        return ((today or _dt.date.today()) - _dt.timedelta(days=1)).isoformat()

    return {"json": go_json, "currentDate": current, "yesterdayDate": yesterday,
            "toTypeScriptType": _typescript_type}


OLLAMA_FUNC_NAMES = frozenset(ollama_funcs())
_KNOWN_FUNCS = set(BUILTINS) | _LAZY | _UNSUPPORTED | OLLAMA_FUNC_NAMES


# ---------------------------------------------------------------------------------------------
# Execution (text/template/exec.go)
# ---------------------------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State:
    def __init__(self, funcs: dict[str, Callable[..., Any]], data: Any):
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.out: list[str] = []
        self.node: Node | None = None

    def error(self, msg: str) -> TemplateExecError:
        line = self.node.line if self.node is not None else 0
        return TemplateExecError(f"template: :{line}: executing \"\" at <{_describe(self.node)}>: {msg}")

    def var(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, ActionNode):
            assert node.pipe is not None
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                self.out.append(self.printable(value))
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        else:
            raise self.error(f"unknown node: {type(node).__name__}")

    def printable(self, value: Any) -> str:
        try:
            return go_print(value)
        except TemplateExecError as e:
            raise self.error(e.message) from None

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            assert node.pipe is not None and node.list is not None
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        mark = len(self.vars)
        try:
            assert node.pipe is not None and node.list is not None
            value = self.eval_pipeline(dot, node.pipe)
            self.node = node
            pairs: Iterator[tuple[Any, Any]]
            if value is None or value is NO_VALUE:
                pairs = iter(())
            elif isinstance(value, (list, tuple)):
                pairs = iter(list(enumerate(value)))
            elif isinstance(value, dict):
                pairs = iter([(k, value[k]) for k in _map_keys(value)])
            elif isinstance(value, int) and not isinstance(value, bool):
                if len(node.pipe.decl) > 1:
                    raise self.error(f"can't use {value} to iterate over more than one variable")
                pairs = iter([(i, i) for i in range(value)])
            else:
                raise self.error(f"range can't iterate over {go_print(value)}")
            ran = False
            for index, elem in pairs:
                ran = True
                decl = node.pipe.decl
                if decl:
                    if node.pipe.is_assign:
                        if len(decl) > 1:
                            self.set_var(decl[0].ident[0], index)
                            self.set_var(decl[1].ident[0], elem)
                        else:
                            self.set_var(decl[0].ident[0], elem)
                    else:
                        # the last declared variable is the element, the first the index
                        top = len(self.vars) - 1
                        self.vars[top] = (self.vars[top][0], elem)
                        if len(decl) > 1:
                            self.vars[top - 1] = (self.vars[top - 1][0], index)
                inner = len(self.vars)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                except _Break:
                    del self.vars[inner:]
                    break
                finally:
                    del self.vars[inner:]
            if not ran and node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.vars.append((variable.ident[0], value))
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        self.node = first
        if isinstance(first, FieldNode):
            return self.eval_field_chain(dot, dot, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            value = self.var(first.ident[0])
            if len(first.ident) == 1:
                self.not_a_function(cmd.args, final)
                return value
            return self.eval_field_chain(dot, value, first.ident[1:], cmd.args, final)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, NumberNode):
            return first.value
        if isinstance(first, StringNode):
            return first.value
        raise self.error(f"can't evaluate command {first!r}")

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {_describe(args[0])}")

    def eval_chain(self, dot: Any, chain: ChainNode, args: list[Node], final: Any) -> Any:
        assert chain.node is not None
        pipe = chain.node
        value = (self.eval_pipeline(dot, pipe) if isinstance(pipe, PipeNode)
                 else self.eval_arg(dot, pipe))
        return self.eval_field_chain(dot, value, chain.fields, args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, ident: list[str], args: list[Node],
                         final: Any) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(receiver, name, has_args=False)
        has_args = len(args) > 1 or final is not _MISSING
        return self.eval_field(receiver, ident[-1], has_args)

    def eval_field(self, receiver: Any, name: str, has_args: bool) -> Any:
        if receiver is NO_VALUE:
            return NO_VALUE
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, GoStruct):
            if name not in receiver.fields:
                raise self.error(f"can't evaluate field {name} in type {receiver.type_name}")
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function")
            return receiver.fields[name]
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            return None if isinstance(receiver, GoMap) else NO_VALUE
        raise self.error(f"can't evaluate field {name} in type {_type_name(receiver)}")

    def eval_function(self, dot: Any, node: IdentifierNode, args: list[Node], final: Any) -> Any:
        name = node.name
        arg_nodes = args[1:]
        if name in _LAZY:
            thunks = [_Lazy(lambda n=n: self.eval_arg(dot, n)) for n in arg_nodes]
            if final is not _MISSING:
                thunks.append(_Lazy(lambda: final))
            if not thunks:
                raise self.error(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for thunk in thunks:
                value = thunk.fn()
                if truth(value) != (name == "and"):
                    return value
            return value
        fn = self.funcs.get(name) or BUILTINS.get(name)
        if fn is None:
            if name in _UNSUPPORTED:
                raise self.error(f"{name} is not supported by vllama's template renderer")
            raise self.error(f'"{name}" is not a defined function')
        values = [self.eval_arg(dot, n) for n in arg_nodes]
        if final is not _MISSING:
            values.append(final)
        self.node = node
        try:
            return fn(*values)
        except TemplateExecError as e:
            raise self.error(f"error calling {name}: {e.message}") from None
        except TypeError:
            raise self.error(f"wrong number of args for {name}: got {len(values)}") from None

    def eval_arg(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, NilNode):
            return None
        if isinstance(node, FieldNode):
            return self.eval_field_chain(dot, dot, node.ident, [node], _MISSING)
        if isinstance(node, VariableNode):
            value = self.var(node.ident[0])
            if len(node.ident) == 1:
                return value
            return self.eval_field_chain(dot, value, node.ident[1:], [node], _MISSING)
        if isinstance(node, PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, IdentifierNode):
            return self.eval_function(dot, node, [node], _MISSING)
        if isinstance(node, ChainNode):
            return self.eval_chain(dot, node, [node], _MISSING)
        if isinstance(node, (BoolNode, NumberNode, StringNode)):
            return node.value
        raise self.error(f"can't handle {_describe(node)} for arg")


_MISSING = object()  # "no value from a previous pipeline stage"


def _describe(node: Node | None) -> str:
    """A node as Go's error messages quote it (approximately: `.Field`, `$x.A`, `eq`)."""
    if isinstance(node, FieldNode):
        return "." + ".".join(node.ident)
    if isinstance(node, VariableNode):
        return ".".join(node.ident)
    if isinstance(node, IdentifierNode):
        return node.name
    if isinstance(node, StringNode):
        return node.quoted
    if isinstance(node, NumberNode):
        return node.text
    if isinstance(node, DotNode):
        return "."
    if isinstance(node, PipeNode):
        return "(" + " | ".join(" ".join(_describe(a) for a in c.args) for c in node.cmds) + ")"
    if isinstance(node, ChainNode):
        return _describe(node.node) + "".join("." + f for f in node.fields)
    return type(node).__name__ if node is not None else ""


# ---------------------------------------------------------------------------------------------
# The public face
# ---------------------------------------------------------------------------------------------


def identifiers(node: Node) -> list[str]:
    """Ollama's template.Identifiers: field and variable names reachable through lists, actions,
    branch pipelines and bodies, and nested pipelines (not through chains)."""
    if isinstance(node, ListNode):
        return [name for n in node.nodes for name in identifiers(n)]
    if isinstance(node, ActionNode):
        return identifiers(node.pipe) if node.pipe is not None else []
    if isinstance(node, BranchNode):
        names = identifiers(node.pipe) if node.pipe is not None else []
        for lst in (node.list, node.else_list):
            if lst is not None:
                names += identifiers(lst)
        return names
    if isinstance(node, PipeNode):
        return [name for c in node.cmds for a in c.args for name in identifiers(a)]
    if isinstance(node, (FieldNode, VariableNode)):
        return list(node.ident)
    return []


class GoTemplate:
    """A parsed Go template. `parse` raises TemplateParseError; `execute` TemplateExecError."""

    def __init__(self, source: str, root: ListNode):
        self.source = source
        self.root = root

    @classmethod
    def parse(cls, source: str) -> GoTemplate:
        return cls(source, _Parser(source, _KNOWN_FUNCS).parse())

    def vars(self) -> set[str]:
        """The lower-cased names the template refers to (Ollama's Template.Vars)."""
        return {name.lower() for n in self.root.nodes for name in identifiers(n)}

    def execute(self, data: Any, *, funcs: dict[str, Callable[..., Any]] | None = None,
                today: _dt.date | None = None) -> str:
        """Render with `data` as dot. `funcs` replaces Ollama's function set (None: Ollama's, with
        currentDate answering `today`); Go's builtins are always there."""
        state = _State(ollama_funcs(today) if funcs is None else funcs, data)
        try:
            state.walk(data, self.root)
        except (_Break, _Continue):  # unreachable: the parser keeps them inside range
            raise state.error("break or continue outside range") from None
        except RecursionError:
            raise TemplateExecError("template: exceeded maximum template depth") from None
        return "".join(state.out)

    def with_nodes(self, root: ListNode) -> GoTemplate:
        return GoTemplate(self.source, root)
