"""The local model store: content-addressed blobs, one manifest per name, loadable folders.

Layout under the root (default `vllama.config.models_dir()`):

    blobs/sha256-<hex>                                  file contents, verified before they appear
    manifests/<host>/<namespace>/<model>/<tag>          JSON: repo, revision, files, details
    snapshots/<manifest digest>/<file path>             links to blobs: the folder vLLM loads
    partial/                                            downloads and uploads in progress

Every write lands in a temporary file that is renamed into place, so an interrupted operation
leaves either the old state or the new one, never half a manifest or an unverified blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..config import models_dir
from . import info
from .names import InvalidName, ModelName

log = logging.getLogger("vllama.models")

MANIFEST_MEDIA_TYPE = "application/vnd.vllama.manifest.v1+json"
_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")
_CHUNK = 1 << 20

# What vLLM needs from a Hugging Face repo: configs, tokenizer, chat template, safetensors
# weights, sentence-transformers pooling modules. Not .bin/.pth/.gguf/onnx/flax copies.
_ROOT_FILES = re.compile(
    r"(config.*\.json|generation_config\.json|(pre)?processor_config\.json|video_preprocessor_config\.json"
    r"|tokenizer.*|special_tokens_map\.json|added_tokens\.json|vocab\.(json|txt)|merges\.txt|.*\.tiktoken"
    r"|spiece\.model|sentencepiece.*\.model|chat_template.*\.(jinja|json)|modules\.json|sentence_bert_config\.json"
    r"|.*\.safetensors|.*\.safetensors\.index\.json|params\.json|LICEN[CS]E(\..*)?|vllama_source\.json)",
    re.IGNORECASE,
)
_MODULE_FILES = re.compile(r"\d+_[A-Za-z]+/(config\.json|.*\.safetensors)")
_NOT_WEIGHTS = re.compile(r".*\.(bin|pth|pt|gguf|onnx|h5|msgpack|ot|ckpt)(\.index\.json)?$", re.IGNORECASE)


class ModelNotFound(LookupError):
    """No manifest for that name."""


class DigestMismatch(ValueError):
    def __init__(self, expected: str, got: str):
        super().__init__(f'digest mismatch, expected "{expected}", got "{got}"')
        self.expected = expected
        self.got = got


def parse_digest(digest: str) -> str:
    """The lowercase hex of `sha256:<hex>` or `sha256-<hex>`; ValueError otherwise."""
    m = _DIGEST.fullmatch(digest.strip()) if isinstance(digest, str) else None
    if not m:
        raise ValueError("invalid digest format")
    return m.group(1).lower()


def is_model_file(path: str) -> bool:
    """Whether a repo file is one vLLM needs to load the model."""
    if _NOT_WEIGHTS.fullmatch(path):
        return False
    return bool(_ROOT_FILES.fullmatch(path) or _MODULE_FILES.fullmatch(path))


def safe_relpath(path: str) -> str:
    """A relative POSIX path with no `..`, `.`, empty, absolute or NUL parts; ValueError otherwise."""
    if not isinstance(path, str) or not path or "\0" in path or "\\" in path:
        raise ValueError("file path must be relative")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError("file path must be relative")
    return str(pure)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class LocalModel:
    name: str  # display name, e.g. "smollm2:135m"
    path: Path  # a folder vLLM loads: config.json, tokenizer files, *.safetensors
    digest: str  # sha256 hex of the manifest file
    size: int
    modified_at: datetime  # timezone-aware
    details: dict[str, Any]
    config: dict[str, Any]
    manifest: dict[str, Any]
    model_name: ModelName = field(compare=False)

    def __hash__(self) -> int:  # the dict fields are not hashable; name and digest identify a model
        return hash((self.name, self.digest))

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.manifest.get("files", [])

    @cached_property
    def capabilities(self) -> list[str]:
        return info.capabilities(self)

    @cached_property
    def parameters(self) -> dict[str, Any]:
        """Ollama options this model defaults to (generation_config.json, then `create` overrides)."""
        return info.default_parameters(self)


class ModelStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else models_dir()
        self.blobs_dir = self.root / "blobs"
        self.manifests_dir = self.root / "manifests"
        self.snapshots_dir = self.root / "snapshots"
        self.partial_dir = self.root / "partial"
        self._pins: Counter[str] = Counter()
        self._lock = threading.RLock()

    # -- blobs --------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / f"sha256-{parse_digest(digest)}"

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def add_blob(self, source: Path | str | IO[bytes], digest: str | None = None, *, move: bool = False) -> str:
        """Store a file (copied, or moved when `move`) or a binary stream; return `sha256:<hex>`.

        With `digest`, the content must hash to it (DigestMismatch otherwise) and an existing
        blob is reused without reading the source."""
        expected = parse_digest(digest) if digest else None
        if expected and self.has_blob(f"sha256:{expected}"):
            if move:
                Path(source).unlink(missing_ok=True)  # type: ignore[arg-type]
            return f"sha256:{expected}"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        staged = Path(source) if move else self.partial_dir / f"upload-{uuid.uuid4().hex}"  # type: ignore[arg-type]
        try:
            got = sha256_file(staged) if move else self._copy_hashing(source, staged)
            if expected and got != expected:
                raise DigestMismatch(f"sha256:{expected}", f"sha256:{got}")
            target = self.blobs_dir / f"sha256-{got}"
            if target.is_file():
                staged.unlink(missing_ok=True)
            else:
                staged.chmod(0o444)  # blobs are shared by every model that links them
                os.replace(staged, target)
        except BaseException:
            if not move:
                staged.unlink(missing_ok=True)
            raise
        return f"sha256:{got}"

    @staticmethod
    def _copy_hashing(source: Path | str | IO[bytes], dest: Path) -> str:
        h = hashlib.sha256()
        with contextlib.ExitStack() as stack:
            src = stack.enter_context(open(source, "rb")) if isinstance(source, (str, Path)) else source
            out = stack.enter_context(open(dest, "wb"))
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        return h.hexdigest()

    @contextlib.contextmanager
    def pinned(self, digests: Iterable[str]) -> Iterator[None]:
        """Keep these blobs from being garbage-collected while a manifest that uses them is written."""
        hexes = [parse_digest(d) for d in digests]
        with self._lock:
            self._pins.update(hexes)
        try:
            yield
        finally:
            with self._lock:
                self._pins.subtract(hexes)
                self._pins += Counter()  # drop zero counts

    # -- manifests ----------------------------------------------------------------------------

    def _find(self, name: ModelName) -> Path | None:
        """The manifest path whose parts match `name` ignoring case, in its stored spelling."""
        here = self.manifests_dir
        for part in name.parts:
            try:
                entries = sorted(os.listdir(here))
            except (FileNotFoundError, NotADirectoryError):
                return None
            match = next((e for e in entries if e.lower() == part.lower()), None)
            if match is None:
                return None
            here = here / match
        return here if here.is_file() else None

    def _manifest_paths(self) -> Iterator[tuple[ModelName, Path]]:
        if not self.manifests_dir.is_dir():
            return
        for path in sorted(self.manifests_dir.glob("*/*/*/*")):
            if not path.is_file():
                continue
            rel = path.relative_to(self.manifests_dir).parts
            try:
                name = ModelName(model=rel[2], tag=rel[3], namespace=rel[1], host=rel[0])
            except InvalidName:
                continue  # a temporary file, or something that is not ours
            yield name, path

    def _load(self, name: ModelName, path: Path) -> LocalModel:
        raw = path.read_bytes()
        manifest = json.loads(raw)
        digest = hashlib.sha256(raw).hexdigest()
        files = manifest.get("files", [])
        config: dict[str, Any] = {}
        config_entry = next((f for f in files if f["path"] == "config.json"), None)
        if config_entry is not None:
            config = json.loads(self.blob_path(config_entry["digest"]).read_text(encoding="utf-8"))
        mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).astimezone()
        return LocalModel(
            name=name.display,
            path=self._ensure_snapshot(digest, files),
            digest=digest,
            size=sum(int(f["size"]) for f in files),
            modified_at=mtime,
            details=info.ordered_details(manifest.get("details") or info.details_from(config, None, None)),
            config=config,
            manifest=manifest,
            model_name=name,
        )

    def get(self, name: str | ModelName) -> LocalModel:
        """The model for a name (case-insensitive, `:latest` implied); InvalidName / ModelNotFound."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        path = self._find(parsed)
        if path is None:
            raise ModelNotFound(str(name))
        stored = path.relative_to(self.manifests_dir).parts
        return self._load(ModelName(model=stored[2], tag=stored[3], namespace=stored[1], host=stored[0]), path)

    def exists(self, name: str | ModelName) -> bool:
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        return self._find(parsed) is not None

    def list(self) -> list[LocalModel]:
        """Every model, newest first; a manifest that cannot be read is logged and skipped."""
        models = []
        for name, path in self._manifest_paths():
            try:
                models.append(self._load(name, path))
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("skipping unreadable manifest %s: %s", path, err)
        models.sort(key=lambda m: m.modified_at, reverse=True)
        return models

    def write_manifest(self, name: str | ModelName, files: Iterable[dict[str, Any]], *, repo: str | None = None,
                       revision: str | None = None, extra: dict[str, Any] | None = None) -> LocalModel:
        """Point `name` at these blobs ({path, digest, size}); they must already be in the store."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        entries = []
        for f in files:
            digest = f"sha256:{parse_digest(f['digest'])}"
            blob = self.blob_path(digest)
            if not blob.is_file():
                raise FileNotFoundError(f"blob {digest} is missing for {f['path']}")
            entries.append({"path": safe_relpath(f["path"]), "digest": digest, "size": blob.stat().st_size})
        entries.sort(key=lambda e: e["path"])
        if not any(e["path"] == "config.json" for e in entries):
            raise ValueError("a model needs a config.json")
        manifest = {
            "schemaVersion": 1,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "format": "safetensors",
            "repo": repo,
            "revision": revision,
            "details": self._details(entries),
            "files": entries,
            **(extra or {}),
        }
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        # The servable folder first: a name only appears once its model can be loaded.
        self._ensure_snapshot(hashlib.sha256(data).hexdigest(), entries)
        with self._lock:
            path = self._find(parsed) or self.manifests_dir.joinpath(*parsed.parts)
            atomic_write(path, data)
        return self.get(parsed)

    def _details(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        by_path = {e["path"]: self.blob_path(e["digest"]) for e in entries}
        config = json.loads(by_path["config.json"].read_text(encoding="utf-8"))
        weights = [blob for path, blob in by_path.items() if path.endswith(".safetensors")]
        count, dtype = info.weights_summary(weights)
        return info.details_from(config, count, dtype)

    # -- whole models -------------------------------------------------------------------------

    def create_from_folder(self, name: str | ModelName, folder: Path, *, repo: str | None = None,
                           revision: str | None = None, extra: dict[str, Any] | None = None) -> LocalModel:
        """Copy a Hugging Face-layout folder into the store under `name` (only what vLLM needs)."""
        folder = Path(folder)
        files = []
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and not any(p.startswith(".") for p in rel.split("/")) and is_model_file(rel):
                digest = self.add_blob(path)
                files.append({"path": rel, "digest": digest})
        with self.pinned(f["digest"] for f in files):
            return self.write_manifest(name, files, repo=repo, revision=revision, extra=extra)

    def copy(self, src: str | ModelName, dst: str | ModelName) -> LocalModel:
        """Give a model a second name; both names share the manifest digest and the blobs."""
        source = src if isinstance(src, ModelName) else ModelName.parse(src)
        target = dst if isinstance(dst, ModelName) else ModelName.parse(dst)
        with self._lock:
            path = self._find(source)
            if path is None:
                raise ModelNotFound(str(src))
            atomic_write(self._find(target) or self.manifests_dir.joinpath(*target.parts), path.read_bytes())
        return self.get(target)

    def delete(self, name: str | ModelName) -> None:
        """Remove a name, then the blobs and the folder no other manifest uses."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        with self._lock:
            path = self._find(parsed)
            if path is None:
                raise ModelNotFound(str(name))
            try:
                files = json.loads(path.read_bytes()).get("files", [])
            except ValueError:
                files = []
            path.unlink()
            self._remove_empty_dirs(path.parent)
            self.prune(f["digest"] for f in files)

    def prune(self, digests: Iterable[str] = ()) -> int:
        """Delete these blobs unless a manifest (or a pull in progress) uses them, and every
        snapshot folder no manifest names; return how many blobs went."""
        with self._lock:
            used, manifests = self._references()
            removed = 0
            for digest in set(digests):
                hexdigest = parse_digest(digest)
                blob = self.blobs_dir / f"sha256-{hexdigest}"
                if hexdigest not in used and not self._pins[hexdigest] and blob.exists():
                    blob.unlink()
                    removed += 1
            if self.snapshots_dir.is_dir():
                for folder in self.snapshots_dir.iterdir():
                    if not folder.name.startswith(".") and folder.name not in manifests:
                        shutil.rmtree(folder, ignore_errors=True)
            return removed

    def _references(self) -> tuple[set[str], set[str]]:
        """(blob hexes, manifest digests) of every remaining manifest."""
        blobs: set[str] = set()
        manifests: set[str] = set()
        for _, path in self._manifest_paths():
            try:
                raw = path.read_bytes()
                blobs.update(parse_digest(f["digest"]) for f in json.loads(raw).get("files", []))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            manifests.add(hashlib.sha256(raw).hexdigest())
        return blobs, manifests

    def _remove_empty_dirs(self, folder: Path) -> None:
        while folder != self.manifests_dir and self.manifests_dir in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    # -- loadable folders ---------------------------------------------------------------------

    def _ensure_snapshot(self, digest: str, files: list[dict[str, Any]]) -> Path:
        """`snapshots/<digest>/`, links to the blobs under their repo paths; rebuilt when broken."""
        target = self.snapshots_dir / digest
        if target.is_dir() and all((target / f["path"]).is_file() for f in files):
            return target
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}.", dir=self.snapshots_dir))
        try:
            for f in files:
                dest = tmp / safe_relpath(f["path"])
                dest.parent.mkdir(parents=True, exist_ok=True)
                _link(self.blob_path(f["digest"]), dest)
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(tmp, target)
            except OSError:  # another reader built it first
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def _link(blob: Path, dest: Path) -> None:
    """A relative symlink, so the store can move; a hard link or a copy where symlinks fail."""
    try:
        os.symlink(os.path.relpath(blob, dest.parent), dest)
        return
    except OSError:
        pass
    try:
        os.link(blob, dest)
    except OSError:
        shutil.copyfile(blob, dest)
