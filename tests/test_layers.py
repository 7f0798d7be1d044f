"""The layering in code: each layer imports only the ones below it (cli > api > serving > engine > models)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vllama"
# what each layer may not import (a layer above it, or HTTP below the API)
FORBIDDEN = {
    "models": ("vllama.api", "vllama.serving", "vllama.engine", "vllama.cli", "starlette"),
    "engine": ("vllama.api", "vllama.serving", "vllama.cli", "starlette"),
    "serving": ("vllama.api", "vllama.cli", "starlette", "uvicorn"),
    "api": ("vllama.cli",),
}


def imports(path: Path) -> set[str]:
    """Absolute names of every module the file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_upward_imports(layer):
    bad = [f"{path.relative_to(PACKAGE)} imports {name}"
           for path in sorted((PACKAGE / layer).rglob("*.py"))
           for name in sorted(imports(path))
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])]
    assert not bad
