"""Which architectures vLLM runs as multimodal, read from vLLM's model registry without importing
vLLM (importing it takes seconds; /api/tags computes capabilities for every model).

The registry's `_MULTIMODAL_MODELS` is a dict literal in vllm/model_executor/models/registry.py:
its keys are read with `ast` from the installed source. No vLLM installed: no architecture.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path

_REGISTRY = ("model_executor", "models", "registry.py")


@lru_cache(maxsize=1)
def multimodal_architectures() -> frozenset[str]:
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    path = Path(next(iter(spec.submodule_search_locations)), *_REGISTRY)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return frozenset()
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if (isinstance(node, ast.Assign) and isinstance(target, ast.Name) and target.id == "_MULTIMODAL_MODELS"
                and isinstance(node.value, ast.Dict)):
            keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            return frozenset(k for k in keys if isinstance(k, str))
    return frozenset()


def runs_multimodal(architectures: object) -> bool:
    """Whether vLLM runs any of these config.json architectures as a multimodal model."""
    names = architectures if isinstance(architectures, list) else []
    return any(isinstance(a, str) and a in multimodal_architectures() for a in names)
