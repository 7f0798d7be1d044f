"""Ollama's model store, read-only: its manifests, their layers, and what /api/tags and /api/show say.

Ollama keeps models under `$OLLAMA_MODELS` (default `~/.ollama/models`) in the layout vllama's
own store borrowed:

    manifests/<host>/<namespace>/<model>/<tag>    JSON, schemaVersion 2: a config blob and layers
    blobs/sha256-<hex>                            each layer's bytes

A layer's `mediaType` says what it is: `application/vnd.ollama.image.<kind>` with kind one of
model (the GGUF), template (a Go template), system, params (JSON options), messages (JSON),
license, adapter (a LoRA GGUF), projector (a vision projector GGUF). The config blob holds
`model_format`, `model_family(ies)`, `model_type` (the parameter size) and `file_type` (the
quantization). A model's digest, as `/api/tags` reports it, is the sha256 of its manifest
file's bytes; its size is the sum of its layers' and its config's sizes.

Nothing here writes: this module reads manifests and blobs and never opens a file for writing.
The same reader serves Ollama-format manifests in vllama's own store (models pulled from
Ollama's registry), with blobs found there first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .names import InvalidName, ModelName

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_PREFIX = "application/vnd.ollama.image."
LAYER_KINDS = ("model", "template", "system", "params", "messages", "license", "adapter", "projector")
_HEX = re.compile(r"sha256:([0-9a-f]{64})")


def default_root() -> Path:
    """`$OLLAMA_MODELS`, else `~/.ollama/models`, as Ollama's envconfig.Models has it."""
    value = os.environ.get("OLLAMA_MODELS", "").strip().strip("\"'").strip()
    return Path(value).expanduser() if value else Path.home() / ".ollama" / "models"


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str  # "sha256:<hex>"
    size: int

    @property
    def kind(self) -> str:
        """`model`, `template`, ... for Ollama's layer types; the whole media type otherwise."""
        return self.media_type.removeprefix(LAYER_PREFIX)

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")


def is_ollama_manifest(data: Any) -> bool:
    return isinstance(data, dict) and data.get("schemaVersion") == 2 and isinstance(data.get("layers"), list)


def parse_layer(entry: Any) -> Layer:
    """One `{mediaType, digest, size}` entry; ValueError when it is malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("mediaType"), str):
        raise ValueError("manifest layer without a mediaType")
    digest = str(entry.get("digest", ""))
    if not _HEX.fullmatch(digest):
        raise ValueError(f"manifest layer with a bad digest {digest!r}")
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"manifest layer {digest} with a bad size")
    return Layer(entry["mediaType"], digest, size)


@dataclass(frozen=True)
class OllamaManifest:
    """One parsed manifest, its layers' small contents read, the GGUF's path resolved."""

    name: ModelName  # in the stored spelling
    digest: str  # sha256 hex of the manifest file's bytes
    size: int  # layers and config
    modified_at: datetime
    config: dict[str, Any]  # the config blob (model_format, model_family, file_type, ...)
    config_layer: Layer
    layers: tuple[Layer, ...]
    model_path: Path | None  # the model layer's GGUF
    adapter_paths: tuple[Path, ...]
    projector_paths: tuple[Path, ...]
    template: str | None
    system: str | None
    license: str | None
    params: dict[str, Any]
    messages: list[dict[str, Any]]

    def layer(self, kind: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.kind == kind), None)

    @property
    def model_layer(self) -> Layer | None:
        return self.layer("model")

    @property
    def details(self) -> dict[str, Any]:
        """/api/tags' details, from the config blob as Ollama's ListHandler takes them."""
        c = self.config
        family = str(c.get("model_family") or "")
        families = c.get("model_families")
        return {
            "parent_model": "",
            "format": str(c.get("model_format") or "gguf"),
            "family": family,
            "families": list(families) if isinstance(families, list) else ([family] if family else None),
            "parameter_size": str(c.get("model_type") or ""),
            "quantization_level": str(c.get("file_type") or ""),
        }


def parse_manifest(name: ModelName, raw: bytes, mtime: float, blob: Callable[[str], Path]) -> OllamaManifest:
    """A manifest's bytes -> OllamaManifest; `blob(digest)` is where a layer's bytes are.

    ValueError for anything that is not an Ollama manifest or names a missing small layer."""
    data = json.loads(raw)
    if not is_ollama_manifest(data):
        raise ValueError("not an Ollama manifest")
    layers = tuple(parse_layer(entry) for entry in data["layers"])
    config_layer = parse_layer(data.get("config"))
    config = _json(blob(config_layer.digest), {})

    def text(kind: str) -> str | None:
        # Ollama lets a later layer of the same kind win (a Modelfile overriding its base).
        found = [layer for layer in layers if layer.kind == kind]
        return _read_text(blob(found[-1].digest)) if found else None

    model = next((layer for layer in layers if layer.kind == "model"), None)
    params_layer = [layer for layer in layers if layer.kind == "params"]
    messages_layer = [layer for layer in layers if layer.kind == "messages"]
    messages = _json(blob(messages_layer[-1].digest), []) if messages_layer else []
    return OllamaManifest(
        name=name,
        digest=hashlib.sha256(raw).hexdigest(),
        size=sum(layer.size for layer in (*layers, config_layer)),
        modified_at=datetime.fromtimestamp(mtime, tz=timezone.utc).astimezone(),
        config=config if isinstance(config, dict) else {},
        config_layer=config_layer,
        layers=layers,
        model_path=blob(model.digest) if model else None,
        adapter_paths=tuple(blob(layer.digest) for layer in layers if layer.kind == "adapter"),
        projector_paths=tuple(blob(layer.digest) for layer in layers if layer.kind == "projector"),
        template=text("template"),
        system=text("system"),
        license="\n".join(_read_text(blob(layer.digest)) for layer in layers if layer.kind == "license") or None,
        params=_json(blob(params_layer[-1].digest), {}) if params_layer else {},
        messages=[m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else [],
    )


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _json(path: Path, empty: Any) -> Any:
    value = json.loads(path.read_bytes())
    return value if isinstance(value, type(empty)) else empty


class OllamaStore:
    """A read-only view of an Ollama models folder."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.blobs_dir = self.root / "blobs"
        self.manifests_dir = self.root / "manifests"

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / digest.replace(":", "-", 1)

    def find(self, name: ModelName) -> tuple[ModelName, Path] | None:
        """The manifest matching `name` part by part ignoring case, with the stored spelling."""
        here, stored = self.manifests_dir, []
        for part in name.parts:
            try:
                entries = sorted(os.listdir(here))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                return None
            match = next((e for e in entries if e.lower() == part.lower()), None)
            if match is None:
                return None
            here = here / match
            stored.append(match)
        if not here.is_file():
            return None
        try:
            return ModelName(model=stored[2], tag=stored[3], namespace=stored[1], host=stored[0]), here
        except InvalidName:
            return None

    def manifest_paths(self) -> Iterator[tuple[ModelName, Path]]:
        if not self.manifests_dir.is_dir():
            return
        for path in sorted(self.manifests_dir.glob("*/*/*/*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            host, namespace, model, tag = path.relative_to(self.manifests_dir).parts
            try:
                yield ModelName(model=model, tag=tag, namespace=namespace, host=host), path
            except InvalidName:
                continue

    def read(self, name: ModelName, path: Path) -> OllamaManifest:
        return parse_manifest(name, path.read_bytes(), path.stat().st_mtime, self.blob_path)

    def get(self, name: ModelName) -> OllamaManifest | None:
        found = self.find(name)
        return self.read(*found) if found else None
