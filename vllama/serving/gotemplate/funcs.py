"""The functions a template can call: Go's builtins (text/template/funcs.go) and Ollama's
(template/template.go)."""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from collections.abc import Callable
from typing import Any

from .values import (
    NO_VALUE, GoList, GoMap, GoStruct, TemplateExecError, go_format_float, go_json, go_print,
    json_string, truth, type_name,
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
    raise TemplateExecError(f"len of type {type_name(item)}")


def _index_of(value: Any, length: int) -> int:
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
            item = item.get(index, NO_VALUE if not isinstance(item, GoMap) else None)
        elif item is None or item is NO_VALUE:
            raise TemplateExecError("index of untyped nil")
        else:
            raise TemplateExecError(f"can't index item of type {type_name(item)}")
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
        raise TemplateExecError(f"can't slice item of type {type_name(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes[:2]):
        if isinstance(index, bool) or not isinstance(index, int):
            raise TemplateExecError(f"cannot index slice/array with type {type_name(index)}")
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
            out.append(go_json(go_print(arg)) if not isinstance(arg, str) else json_string(arg))
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
            out.append(f"%!{verb}({type_name(arg)}={go_print(arg)})")
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{type_name(a)}={go_print(a)}" for a in args[n:]) + ")")
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
LAZY = {"and", "or"}
UNSUPPORTED = {"js", "call"}


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
