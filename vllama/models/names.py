"""Ollama model names: `[host/][namespace/]model[:tag]`, as a small value type.

Parsing follows Ollama's `types/model/name.go`: right to left, a `:` after the last `/` splits
off the tag, then each `/` splits off the model, the namespace and finally the host. Every part
must start with a letter, digit or `_`, so no part can ever be `.`, `..`, empty or absolute: a
parsed name is always safe to use as a relative path under the model store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
HUGGINGFACE_HOSTS = ("hf.co", "huggingface.co")

_PARTS = {
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"),
    "namespace": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
}


class InvalidName(ValueError):
    """The text is not a valid Ollama model name."""


@dataclass(frozen=True, eq=False)
class ModelName:
    """A parsed model name; parts keep their spelling, equality and hashing ignore case."""

    model: str
    tag: str = DEFAULT_TAG
    namespace: str = DEFAULT_NAMESPACE
    host: str = DEFAULT_HOST

    def __post_init__(self) -> None:
        for kind in ("host", "namespace", "model", "tag"):
            value = getattr(self, kind)
            if not isinstance(value, str) or not _PARTS[kind].fullmatch(value):
                raise InvalidName(f"invalid model name: {kind} {value!r}")

    @classmethod
    def parse(cls, text: str) -> ModelName:
        """Parse `[scheme://][host/][namespace/]model[:tag]`; raise InvalidName."""
        if not isinstance(text, str):
            raise InvalidName("invalid model name")
        s = text.strip()
        for scheme in ("https://", "http://"):
            if s.startswith(scheme):
                s = s[len(scheme):]
                break
        tag = DEFAULT_TAG
        colon, slash = s.rfind(":"), s.rfind("/")
        if colon > slash:
            s, tag = s[:colon], s[colon + 1:]
        parts = s.split("/")
        if len(parts) > 3:
            raise InvalidName(f"invalid model name: {text!r}")
        host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
        elif len(parts) == 2:
            namespace, model = parts
        else:
            (model,) = parts
        return cls(model, tag, namespace, host)

    @property
    def key(self) -> str:
        """Case-insensitive identity: `registry.ollama.ai/library/x:latest` in lower case."""
        return str(self).lower()

    @property
    def display(self) -> str:
        """Ollama's DisplayShortest: `x:latest`, `user/m:q4`, `host/ns/m:t`."""
        if self.host.lower() != DEFAULT_HOST:
            return str(self)
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def parts(self) -> tuple[str, str, str, str]:
        """(host, namespace, model, tag): the manifest path under `<store>/manifests/`."""
        return (self.host, self.namespace, self.model, self.tag)

    @property
    def is_huggingface(self) -> bool:
        return self.host.lower() in HUGGINGFACE_HOSTS

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def __repr__(self) -> str:
        return f"ModelName({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelName) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def parse_name(text: str) -> ModelName:
    return ModelName.parse(text)


def is_valid_name(text: str) -> bool:
    try:
        ModelName.parse(text)
    except InvalidName:
        return False
    return True
