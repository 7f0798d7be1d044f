"""The functions a template can call: Go's builtins (text/template/funcs.go) and Ollama's
(template/template.go)."""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from collections.abc import Callable
from typing import Any

from .values import (
    NO_VALUE,
    GoList,
    GoMap,
    GoStruct,
    TemplateExecError,
    go_format_float,
    go_json,
    go_print,
    go_quote,
    map_keys,
    truth,
    type_name,
)


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
                raise TemplateExecError(f"non-comparable types {type_name(arg1)}, {type_name(arg)}")
            if arg1 is arg:
                return True
            continue
        if k1 == "invalid" or arg1 == arg:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka not in ("int", "float", "string", "bool") or kb not in ("int", "float", "string", "bool"):
        raise TemplateExecError("invalid type for comparison")
    if ka != kb:
        raise TemplateExecError("incompatible types for comparison")
    if ka == "bool":
        raise TemplateExecError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _len(item: Any) -> int:
    if item is None or item is NO_VALUE:
        raise TemplateExecError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8"))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise TemplateExecError(f"len of type {type_name(item)}")


def _index_of(value: Any, length: int) -> int:
    if value is None:
        raise TemplateExecError("cannot index slice/array with nil")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateExecError(f"cannot index slice/array with type {type_name(value)}")
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
            if not isinstance(index, str):
                raise TemplateExecError(f"value has type {type_name(index)}; should be string")
            item = item.get(index, NO_VALUE if not isinstance(item, GoMap) else None)
        elif item is None or item is NO_VALUE:  # a nil element met on the way
            raise TemplateExecError("index of nil pointer")
        else:
            raise TemplateExecError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise TemplateExecError("slice of untyped nil")
    if len(indexes) > 3:
        raise TemplateExecError(f"too many slice indexes: {len(indexes)}")
    data: bytes | list[Any] | tuple[Any, ...]
    if isinstance(item, str):
        if len(indexes) == 3:
            raise TemplateExecError("cannot 3-index slice a string")
        data = item.encode("utf-8")
    elif isinstance(item, (list, tuple)):
        data = item
    else:
        raise TemplateExecError(f"can't slice item of type {type_name(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes[:2]):
        if index is None:
            raise TemplateExecError("cannot index slice/array with nil")
        if isinstance(index, bool) or not isinstance(index, int):
            raise TemplateExecError(f"cannot index slice/array with type {type_name(index)}")
        if index < 0 or index > len(data):
            raise TemplateExecError(f"index out of range: {index}")
        bounds[i] = index
    if bounds[0] > bounds[1]:
        raise TemplateExecError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    part = data[bounds[0]:bounds[1]]
    if isinstance(part, bytes):
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
    """fmt.Sprintf: verbs applied element by element to collections, fmt's %!verb(type=value) for
    operands a verb does not fit, %!(EXTRA ...) and %!verb(MISSING) as Go writes them."""
    out = []
    i = n = 0
    while i < len(fmt):
        if fmt[i] != "%":
            out.append(fmt[i])
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "+-# 0":
            j += 1
        while j < len(fmt) and (fmt[j].isdigit() or fmt[j] == "."):
            j += 1
        if j >= len(fmt):
            out.append("%!(NOVERB)")
            break
        spec, verb = fmt[i + 1:j], fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
        elif n >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_format(verb, spec, args[n], top=True))
            n += 1
    if n < len(args):
        extra = ("<nil>" if a is None else f"{type_name(a)}={go_print(a)}" for a in args[n:])
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)


def _hex_float(f: float, upper: bool) -> str:
    """%x of a float64: shortest hex mantissa, two-digit exponent (0x1.4p+01)."""
    if f == 0:
        text = "0x0p+00"
    else:
        mantissa, exp = float.hex(abs(f)).split("p")
        mantissa = mantissa.rstrip("0").rstrip(".")
        text = ("-" if f < 0 else "") + f"{mantissa}p{int(exp):+03d}"
    return text.upper().replace("0X", "0X") if upper else text


def _pad(text: str, spec: str) -> str:
    """Width, precision-free, and the '-' flag, as fmt pads a string."""
    width = "".join(c for c in spec.split(".")[0] if c.isdigit()).lstrip("0")
    if not width:
        return text
    return text.ljust(int(width)) if "-" in spec else text.rjust(int(width))


def _format(verb: str, spec: str, value: Any, top: bool = False) -> str:
    """One operand under one verb, as fmt's printArg/printValue do."""
    if value is None or value is NO_VALUE:
        return "<nil>" if verb == "v" or not top else f"%!{verb}(<nil>)"
    stringer = isinstance(value, (GoStruct, GoList, GoMap)) and value.string is not None
    if stringer and verb in "svqxX":
        return _format(verb, spec, value.string(value))
    if isinstance(value, GoStruct):
        return "{" + " ".join(_format(verb, spec, v) for v in value.fields.values()) + "}"
    if isinstance(value, (list, tuple)):
        if verb in "sqxX" and not value:
            return "[]"
        return "[" + " ".join(_format(verb, spec, v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{_format(verb, spec, k)}:{_format(verb, spec, value[k])}"
                                 for k in map_keys(value)) + "]"
    if isinstance(value, str):
        if verb in "sv":
            precision = spec.split(".")[1] if "." in spec else ""
            return _pad(value[:int(precision or 0)] if "." in spec else value, spec)
        if verb == "q":
            return _pad(go_quote(value), spec)
        if verb in "xX":
            text = value.encode("utf-8").hex()
            return _pad(text.upper() if verb == "X" else text, spec)
        return _bad_verb(verb, value, spec)
    if isinstance(value, bool):
        if verb in "tv":
            return _pad("true" if value else "false", spec)
        return _bad_verb(verb, value, spec)
    if isinstance(value, int):
        if verb in "vd":
            return ("%" + spec + "d") % value
        if verb in "xXo":
            return ("%" + spec + verb) % value
        if verb == "b":
            return _pad(format(value, "b"), spec)
        rune = chr(value) if 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF else "\ufffd"
        if verb == "c":
            return _pad(rune, spec)
        if verb == "q":
            return _pad("'" + go_quote(rune)[1:-1].replace('\\"', '"').replace("'", "\\'") + "'", spec)
        return _bad_verb(verb, value, spec)
    if isinstance(value, float):
        if verb == "v" or verb in "gG" and "." not in spec:
            return _pad(go_format_float(value), spec)
        if verb in "feEgG":
            return ("%" + spec + verb) % value
        if verb in "xX":
            return _pad(_hex_float(value, verb == "X"), spec)
        return _bad_verb(verb, value, spec)
    return _bad_verb(verb, value, spec)


def _bad_verb(verb: str, value: Any, spec: str = "") -> str:
    """fmt's complaint for a verb that does not fit the operand: %!s(int=1), the value written
    as %v under the same width and precision."""
    if value is None or value is NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={_format('v', spec, value)})"


def _eval_args(*args: Any) -> str:
    """text/template's evalArgs (html, urlquery): one string as it is, else fmt.Sprint with a nil
    operand written <no value>."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(*(NO_VALUE if a is None else a for a in args))


def _html(*args: Any) -> str:
    s = _eval_args(*args)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&#34;").replace("\0", "\ufffd"))


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}


def _js(*args: Any) -> str:
    """text/template's JSEscapeString."""
    out = []
    for ch in _eval_args(*args):
        if ch in _JS:
            out.append(_JS[ch])
        elif ch < " ":
            out.append(f"\\u00{ord(ch):02X}")
        elif ord(ch) >= 0x80 and not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(*args), safe="")


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
    "le": _le,
    "gt": lambda a, b: not _le(a, b),
    "ge": lambda a, b: not _lt(a, b),
    "not": lambda a: not truth(a),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _sprintf,
    "println": _sprintln,
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
}
LAZY = {"and", "or"}

# Each function's parameters as Go declares them: (fixed count, variadic), for Go's arity errors.
ARITY: dict[str, tuple[int, bool]] = {
    "and": (1, True), "or": (1, True), "not": (1, False), "len": (1, False), "index": (1, True),
    "slice": (1, True), "print": (0, True), "printf": (1, True), "println": (0, True),
    "html": (0, True), "js": (0, True), "urlquery": (0, True), "call": (1, True),
    "eq": (1, True), "ne": (2, False), "lt": (2, False), "le": (2, False), "gt": (2, False),
    "ge": (2, False), "json": (1, False), "currentDate": (0, True), "yesterdayDate": (0, True),
    "toTypeScriptType": (1, False),
}
UNSUPPORTED = {"call"}


def ollama_funcs(today: _dt.date | None = None) -> dict[str, Callable[..., Any]]:
    """The functions Ollama's template package adds; `today` fixes currentDate (tests)."""

    def current(*_: Any) -> str:
        return (today or _dt.date.today()).isoformat()

    def yesterday(*_: Any) -> str:
        return ((today or _dt.date.today()) - _dt.timedelta(days=1)).isoformat()

    return {"json": go_json, "currentDate": current, "yesterdayDate": yesterday,
            "toTypeScriptType": _typescript_type}


OLLAMA_FUNC_NAMES = frozenset(ollama_funcs())
KNOWN_FUNCS = set(BUILTINS) | LAZY | UNSUPPORTED | OLLAMA_FUNC_NAMES
