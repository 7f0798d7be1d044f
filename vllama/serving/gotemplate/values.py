"""Go values as Python values, and how fmt and encoding/json write them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
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
    """A Go struct (or pointer to one: a template prints both as {...}): named fields in declaration
    order.

    `json_names` gives each field's JSON key and whether it is `omitempty` (no entry: the Go field
    name, always written); `string` is the type's `String()` method, if it has one.
    """

    type_name: str
    fields: dict[str, Any]
    json_names: dict[str, tuple[str, bool]] | None = None
    string: Callable[[GoStruct], str] | None = None


class GoList(list):
    """A Go slice of a named type: may be nil (prints and marshals as Go's nil slice does) and may
    carry `String()` and `MarshalJSON()` methods."""

    def __init__(self, items: Any = (), *, nil: bool = False,
                 string: Callable[[GoList], str] | None = None,
                 marshal: Callable[[GoList], Any] | None = None, untyped: bool = False):
        super().__init__(items)
        self.nil = nil
        self.string = string
        self.marshal = marshal
        self.untyped = untyped  # a []any: elements are interface values


class GoMap(dict):
    """A Go map of a named type: may be nil and may carry a `String()` method."""

    def __init__(self, items: Any = (), *, nil: bool = False,
                 string: Callable[[GoMap], str] | None = None, untyped: bool = False):
        super().__init__(items)
        self.nil = nil
        self.string = string
        self.untyped = untyped  # a map[string]any: values are interface values


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


def json_string(s: str) -> str:
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
        return json_string(value)
    if isinstance(value, GoStruct):
        parts = []
        for name, item in value.fields.items():
            key, omitempty = (value.json_names or {}).get(name, (name, False))
            if value.json_names is not None and name not in value.json_names:
                continue  # json:"-"
            if omitempty and _is_empty(item):
                continue
            parts.append(f"{json_string(key)}:{go_json(item)}")
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
        return "{" + ",".join(f"{json_string(str(k))}:{go_json(v)}" for k, v in items) + "}"
    raise TemplateExecError(f"json: unsupported type: {type(value).__name__}")


def map_keys(m: dict) -> list:
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
        return "{" + " ".join(go_print(v, True) for v in value.fields.values()) + "}"
    if isinstance(value, GoList) and value.string is not None:
        return value.string(value)
    if isinstance(value, GoMap) and value.string is not None:
        return value.string(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_print(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_print(k, True)}:{go_print(value[k], True)}"
                                 for k in map_keys(value)) + "]"
    raise TemplateExecError(f"can't print value of type {type(value).__name__}")


def type_name(value: Any) -> str:
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


def go_quote(s: str) -> str:
    """strconv.Quote: printable characters kept, the rest escaped Go's way."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = ['"']
    for ch in s:
        if ch in named:
            out.append(named[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def holds_interfaces(container: Any) -> bool:
    """Whether a container's elements are Go interface values ([]any, map[string]any): a field
    error on one names `interface {}`, and a nil one cannot be looked into."""
    if isinstance(container, (GoList, GoMap)):
        return container.untyped
    return isinstance(container, (list, tuple, dict))


def any_typed(value: Any) -> bool:
    """Whether a struct field holding `value` is an `any` field (raw JSON: maps, lists, numbers,
    null) rather than a typed one."""
    if isinstance(value, (GoStruct, GoList, GoMap, str, bool, int)):
        return False
    return value is None or isinstance(value, (dict, list, tuple, float))

