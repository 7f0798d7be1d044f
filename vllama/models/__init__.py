"""What exists on disk and where it comes from: names, the catalogue, the store, pulls."""

from .names import InvalidName, ModelName
from .store import LocalModel, ModelNotFound, ModelStore

__all__ = ["InvalidName", "LocalModel", "ModelName", "ModelNotFound", "ModelStore"]
