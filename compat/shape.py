"""JSON type skeletons: what two answers must share when their values differ on every run."""

from __future__ import annotations

from typing import Any

NUMBER = ("int", "float")


def shape(value: Any) -> Any:
    """Reduce a JSON value to its skeleton: objects keep their keys, arrays hold the merged shape of
    their items ([] when empty), scalars become "str", "int", "float", "bool" or "null"."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: Any = _EMPTY
        for item in value:
            merged = shape(item) if merged is _EMPTY else merge(merged, shape(item))
        return [] if merged is _EMPTY else [merged]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


_EMPTY = object()


def merge(a: Any, b: Any) -> Any:
    """One skeleton that covers both: objects take the union of keys, int and float make float,
    null gives way to the other side, anything else that disagrees becomes "str|int"-style."""
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, item in b.items():
            out[key] = merge(out[key], item) if key in out else item
        return out
    if isinstance(a, list) and isinstance(b, list):
        if not a or not b:
            return a or b
        return [merge(a[0], b[0])]
    if a in NUMBER and b in NUMBER:
        return "float"
    kinds = sorted(set(_kinds(a)) | set(_kinds(b)))
    return "|".join(kinds)


def _kinds(s: Any) -> list[str]:
    if isinstance(s, dict):
        return ["object"]
    if isinstance(s, list):
        return ["array"]
    return s.split("|")


def describe(s: Any) -> str:
    if isinstance(s, dict):
        return "object"
    if isinstance(s, list):
        return "array"
    return str(s)


def diff(expected: Any, actual: Any, path: str = "$", opaque: frozenset[str] = frozenset()) -> list[str]:
    """Where two skeletons disagree, as readable lines. `null` on either side matches anything (Go
    writes nil slices and maps as null); an expected float accepts an int (Go writes 1.0 as 1); an
    empty array matches any array; paths in `opaque` are compared by kind only."""
    if expected == "null" or actual == "null" or expected == actual:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        if path in opaque:
            return []
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: not in the reference" for k in actual if k not in expected]
        for key in expected:
            if key in actual:
                out += diff(expected[key], actual[key], f"{path}.{key}", opaque)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if not expected or not actual or path in opaque:
            return []
        return diff(expected[0], actual[0], f"{path}[]", opaque)
    if expected == "float" and actual == "int":
        return []
    if isinstance(expected, str) and isinstance(actual, str) and "|" in expected:
        if set(actual.split("|")) <= set(expected.split("|")) | ({"int"} if "float" in expected else set()):
            return []
    return [f"{path}: {describe(actual)}, reference {describe(expected)}"]
