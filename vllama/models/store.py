"""The local model store: content-addressed blobs, one manifest per name, loadable folders.

Layout under the root (default `vllama.config.models_dir()`):

    blobs/sha256-<hex>                                  file contents, verified before they appear
    manifests/<host>/<namespace>/<model>/<tag>          JSON: repo, revision, files, details
    snapshots/<manifest digest>/<file path>             links to blobs: the folder vLLM loads
    converted/sha256-<GGUF digest>/                     a GGUF-born model dequantised for vLLM
    partial/                                            downloads and uploads in progress

Two kinds of manifest live under `manifests/`: vllama's own (a Hugging Face file list) and
Ollama's (schemaVersion 2, GGUF layers: models pulled from Ollama's registry). The user's Ollama
store (`$OLLAMA_MODELS`, else `~/.ollama/models`) is read beside it, never written: its models are
listed and served too, and a name in vllama's store hides the same name there. A GGUF-born model
is dequantised on its first load into `converted/`, keyed by the GGUF's digest, so every name
on the same GGUF shares one conversion.

Every write lands in a temporary file that is renamed into place, so an interrupted operation
leaves either the old state or the new one, never half a manifest or an unverified blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from ..config import models_dir
from . import info
from .gguf import GgufHeader, read_header
from .names import InvalidName, ModelName
from .ollama_store import MANIFEST_MEDIA_TYPE as OLLAMA_MANIFEST_MEDIA_TYPE
from .ollama_store import OllamaManifest, OllamaStore, is_ollama_manifest, parse_manifest

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


class ReadOnlyModel(PermissionError):
    """The model lives in the user's Ollama store, which vllama never changes."""

    def __init__(self, name: str, root: Path):
        super().__init__(f"model '{name}' is in the Ollama store at {root}, which vllama only reads; "
                         f"remove it with 'ollama rm {name}'")


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


ORIGIN_VLLAMA = "vllama"
ORIGIN_OLLAMA = "ollama"  # the user's Ollama store: read-only


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
    origin: str = ORIGIN_VLLAMA  # which store holds the manifest
    ollama: OllamaManifest | None = field(default=None, compare=False)  # an Ollama-format (GGUF) manifest
    # The model as /api/embed loads it whatever it is: a generation model then runs on vLLM's pooling
    # runner converted for embedding (`convert="embed"`), as Ollama embeds with any model.
    for_embedding: bool = False

    def __hash__(self) -> int:  # the dict fields are not hashable; name and digest identify a model
        return hash((self.name, self.digest))

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.manifest.get("files", [])

    # Modelfile settings: the template/system/messages/license layers of an Ollama manifest, or what
    # `create` stored in a vllama manifest. The template is Ollama's Go template text, when there is one.
    @property
    def template(self) -> str | None:
        return self.manifest.get("template") or None

    @property
    def system(self) -> str | None:
        return self.manifest.get("system") or None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("messages") or [])

    @property
    def license(self) -> str | None:
        return self.manifest.get("license") or None

    @property
    def gguf(self) -> Path | None:
        """The GGUF this model is served from, for GGUF-born models (Ollama's model layer)."""
        return self.ollama.model_path if self.ollama else None

    @cached_property
    def gguf_header(self) -> GgufHeader | None:
        """The GGUF's metadata and tensor table (what /api/show prints for it); None for others."""
        return _readable_header(self.gguf) if self.gguf is not None else None

    @property
    def is_converted(self) -> bool:
        """Whether `path` holds the dequantised folder vLLM loads (always, for safetensors models)."""
        return (self.path / "config.json").is_file()

    def embedding_view(self) -> LocalModel:
        return replace(self, for_embedding=True)

    @cached_property
    def capabilities(self) -> list[str]:
        if self.for_embedding:
            return ["embedding"]
        if self.ollama is not None:
            return _gguf_capabilities(self)
        return info.capabilities(self)

    @cached_property
    def parameters(self) -> dict[str, Any]:
        """Ollama options this model defaults to: an Ollama manifest's params layer, else
        generation_config.json, then `create` overrides."""
        if self.ollama is not None:
            return dict(self.ollama.params)
        return info.default_parameters(self)


_HEADERS: dict[tuple[str, float, int], GgufHeader] = {}


def _header(path: Path) -> GgufHeader:
    """A GGUF's header, parsed once per file version (every request resolves its model)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key not in _HEADERS:
        _HEADERS[key] = read_header(path)
    return _HEADERS[key]


def _readable_header(path: Path) -> GgufHeader | None:
    """The header, or None for a GGUF that is missing or unreadable (the model still lists)."""
    try:
        return _header(path)
    except (OSError, ValueError, struct.error) as err:
        log.warning("cannot read the GGUF header of %s: %s", path, err)
        return None


_GO_VAR = re.compile(r"\.(\w+)")


def _gguf_capabilities(model: LocalModel) -> list[str]:
    """Ollama's Capabilities() for a GGUF-born model, less what vllama cannot serve from a GGUF.

    completion, or embedding when the GGUF declares a pooling type; tools and insert when the
    Go template reads .Tools / .Suffix; thinking when it reads .Think or opens a <think> tag.
    Without a template layer (a GGUF from the Hub), the GGUF's own Jinja chat template, which
    the dequantised folder carries, says whether tools and thinking work. Vision (a projector
    layer, or vision blocks in the GGUF) is left out: the dequantised checkpoint vllama serves
    holds the language model only."""
    header = model.gguf_header
    caps = ["embedding" if header is not None and header.key("pooling_type") is not None else "completion"]
    if model.template is not None:
        variables = {v.lower() for v in _GO_VAR.findall(model.template)}
        tools, insert = "tools" in variables, "suffix" in variables
        thinking = "think" in variables or "<think>" in model.template
    else:
        jinja = header.metadata.get("tokenizer.chat_template") if header is not None else None
        jinja = jinja if isinstance(jinja, str) else ""
        tools, insert = bool(re.search(r"\btools\b", jinja)), False
        thinking = bool(re.search(r"<think>|enable_thinking|reasoning_content", jinja))
    caps += [cap for cap, present in (("tools", tools), ("insert", insert), ("thinking", thinking)) if present]
    return caps


_DEFAULT = object()


class ModelStore:
    def __init__(self, root: Path | None = None, ollama: OllamaStore | Path | None | object = _DEFAULT):
        """`ollama`: the Ollama store read beside this one; by default the user's
        ($OLLAMA_MODELS, else ~/.ollama/models) when `root` is the default too, else none."""
        self.root = Path(root) if root is not None else models_dir()
        self.blobs_dir = self.root / "blobs"
        self.manifests_dir = self.root / "manifests"
        self.snapshots_dir = self.root / "snapshots"
        self.converted_dir = self.root / "converted"
        self.partial_dir = self.root / "partial"
        if ollama is _DEFAULT:
            ollama = OllamaStore() if root is None else None
        self.ollama: OllamaStore | None = (
            OllamaStore(Path(ollama)) if isinstance(ollama, (str, Path)) else cast("OllamaStore | None", ollama))
        self._pins: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._converting: dict[str, threading.Lock] = {}
        # manifest path -> (its stat, whether the GGUF was converted, the record): every request resolves
        # its model, and a record's config, details and capabilities are read from disk once per manifest
        self._records: dict[str, tuple[tuple[int, int, int], bool, LocalModel]] = {}

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

    def _cached(self, path: Path, build: Callable[[], LocalModel]) -> LocalModel:
        """The record for a manifest file, rebuilt when the file changed (a rewrite replaces it: new
        inode and mtime) or when its GGUF has been converted since. A snapshot is still checked on
        every call: it is rebuilt when broken."""
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self._records.get(str(path))
        if hit is not None and hit[0] == stamp and hit[1] == hit[2].is_converted:
            model = hit[2]
            if model.ollama is None:
                self._ensure_snapshot(model.digest, model.files)
            return model
        model = build()
        self._records[str(path)] = (stamp, model.is_converted, model)
        return model

    def _load(self, name: ModelName, path: Path) -> LocalModel:
        return self._cached(path, lambda: self._read(name, path))

    def _load_ollama(self, name: ModelName, path: Path) -> LocalModel:
        """A model of the user's Ollama store (read, never written)."""
        assert self.ollama is not None
        ollama = self.ollama
        return self._cached(path, lambda: self._from_ollama(ollama.read(name, path), ORIGIN_OLLAMA))

    def _read(self, name: ModelName, path: Path) -> LocalModel:
        raw = path.read_bytes()
        manifest = json.loads(raw)
        if is_ollama_manifest(manifest):  # pulled from Ollama's registry, or copied from its store
            return self._from_ollama(parse_manifest(name, raw, path.stat().st_mtime, self._layer_blob),
                                     ORIGIN_VLLAMA)
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

    def _layer_blob(self, digest: str) -> Path:
        """A layer of an Ollama-format manifest here: in our blobs, else (a `cp` of a model in the
        user's Ollama store) in theirs."""
        ours = self.blob_path(digest)
        if ours.is_file() or self.ollama is None:
            return ours
        theirs = self.ollama.blob_path(digest)
        return theirs if theirs.is_file() else ours

    def _from_ollama(self, m: OllamaManifest, origin: str) -> LocalModel:
        """The record of a GGUF-born model: Ollama's name, digest, size and details; served from
        `converted/sha256-<GGUF digest>/` once that exists (see `servable`)."""
        model = m.model_layer
        if model is None or m.model_path is None:
            raise ValueError(f"{m.name.display}: the manifest has no model layer")
        folder = self.converted_dir / model.digest.replace(":", "-", 1)
        config_file = folder / "config.json"
        if config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
        else:  # not converted yet: what the engine needs before the first load, from the GGUF header
            header = _readable_header(m.model_path)
            config = {"model_type": header.architecture} if header else {}
            for ours, theirs in (("max_position_embeddings", "context_length"), ("hidden_size", "embedding_length")):
                if header is not None and isinstance(header.key(theirs), int):
                    config[ours] = header.key(theirs)
        details = m.details
        if not details["quantization_level"]:
            header = _readable_header(m.model_path)
            details["quantization_level"] = header.file_type if header else ""
        settings = {"template": m.template, "system": m.system, "license": m.license,
                    "parameters": m.params, "messages": m.messages}
        return LocalModel(
            name=m.name.display,
            path=folder,
            digest=m.digest,
            size=m.size,
            modified_at=m.modified_at,
            details=details,
            config=config,
            manifest={"format": details["format"], "files": [],
                      **{k: v for k, v in settings.items() if v not in (None, "", [], {})}},
            model_name=m.name,
            origin=origin,
            ollama=m,
        )

    def _find_ollama(self, name: ModelName) -> tuple[ModelName, Path] | None:
        return self.ollama.find(name) if self.ollama is not None else None

    def get(self, name: str | ModelName) -> LocalModel:
        """The model for a name (case-insensitive, `:latest` implied); InvalidName / ModelNotFound.

        vllama's own store first, then the user's Ollama store."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        path = self._find(parsed)
        if path is None:
            found = self._find_ollama(parsed)
            if found is None:
                raise ModelNotFound(str(name))
            return self._load_ollama(*found)
        stored = path.relative_to(self.manifests_dir).parts
        return self._load(ModelName(model=stored[2], tag=stored[3], namespace=stored[1], host=stored[0]), path)

    def exists(self, name: str | ModelName) -> bool:
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        return self._find(parsed) is not None or self._find_ollama(parsed) is not None

    def list(self) -> list[LocalModel]:
        """Every model in both stores, newest first; vllama's hides the same name in Ollama's.
        A manifest that cannot be read is logged and skipped."""
        models, seen = [], set()
        for name, path in self._manifest_paths():
            seen.add(name.key)
            try:
                models.append(self._load(name, path))
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("skipping unreadable manifest %s: %s", path, err)
        if self.ollama is not None:
            for name, path in self.ollama.manifest_paths():
                if name.key in seen:
                    continue
                try:
                    models.append(self._load_ollama(name, path))
                except (OSError, ValueError, KeyError, TypeError) as err:
                    log.warning("skipping unreadable Ollama manifest %s: %s", path, err)
        models.sort(key=lambda m: m.modified_at, reverse=True)
        return models

    # -- GGUF-born models ---------------------------------------------------------------------

    def servable(self, model: LocalModel) -> LocalModel:
        """The model with a folder vLLM loads: a GGUF-born model's GGUF is dequantised on first
        use into `converted/` (once per GGUF digest, whichever names share it); others as they are."""
        if model.ollama is None or model.is_converted:
            return model
        m = model.ollama
        if m.adapter_paths:
            raise ValueError(f"{model.name} has a LoRA adapter layer; vllama cannot serve GGUF adapters")
        if sum(layer.kind == "model" for layer in m.layers) > 1:
            raise ValueError(f"{model.name} is a split GGUF; vllama dequantises single-file GGUFs only "
                             "(merge the parts with llama.cpp's gguf-split --merge, then `vllama create`)")
        if m.model_path is None or not m.model_path.is_file():
            raise FileNotFoundError(f"{model.name}: the model layer {m.model_layer.digest} is missing")  # type: ignore[union-attr]
        with self._lock:
            lock = self._converting.setdefault(model.path.name, threading.Lock())
        with lock:
            if not model.is_converted:
                self._convert(m.model_path, model.path)
        return replace(self._from_ollama(m, model.origin), for_embedding=model.for_embedding)

    def _convert(self, gguf: Path, folder: Path) -> None:
        from .gguf import dequantize_gguf  # torch and transformers: only when a conversion is due

        self.partial_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="convert-", dir=self.partial_dir))
        try:
            link = work / "model.gguf"  # transformers wants a name that says GGUF; the blob is only read
            link.symlink_to(gguf.resolve())
            log.info("dequantising %s into %s (once)", gguf.name, folder)
            try:
                dequantize_gguf(link, folder)
            except FileExistsError:  # another process finished it first
                pass
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def write_ollama_manifest(self, name: str | ModelName, raw: bytes) -> LocalModel:
        """Store an Ollama-format manifest (as pulled, byte for byte, so its digest is Ollama's);
        every blob it names must already be here (or, for a model derived from one in the user's
        Ollama store, there)."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        data = json.loads(raw)
        if not is_ollama_manifest(data):
            raise ValueError("not an Ollama manifest")
        for digest in _manifest_blobs(data):
            if not self._layer_blob(digest).is_file():
                raise FileNotFoundError(f"blob {digest} is missing")
        with self._lock:
            atomic_write(self._find(parsed) or self.manifests_dir.joinpath(*parsed.parts), raw)
        return self.get(parsed)

    def write_manifest(self, name: str | ModelName, files: Iterable[dict[str, Any]], *, repo: str | None = None,
                       revision: str | None = None, extra: dict[str, Any] | None = None,
                       sources: Iterable[str] = ()) -> LocalModel:
        """Point `name` at these blobs ({path, digest, size}); they must already be in the store.

        `sources`: blobs the model was made from but is not served from (the GGUF a `create`
        dequantised). The manifest keeps them, as Ollama's keeps its model layer, so they stay
        while a name uses them and go with the last one."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        kept = []
        for source in sources:
            digest = f"sha256:{parse_digest(source)}"
            if not self.has_blob(digest):
                raise FileNotFoundError(f"blob {digest} is missing")
            kept.append({"digest": digest, "size": self.blob_path(digest).stat().st_size})
        entries: list[dict[str, Any]] = []
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
            **({"sources": kept} if kept else {}),
            **(extra or {}),
        }
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        # The servable folder first: a name only appears once its model can be loaded.
        self._ensure_snapshot(hashlib.sha256(data).hexdigest(), entries)
        with self._lock:
            path = self._find(parsed) or self.manifests_dir.joinpath(*parsed.parts)
            atomic_write(path, data)
        return self.get(parsed)

    def _details(self, entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        by_path = {e["path"]: self.blob_path(e["digest"]) for e in entries}
        config = json.loads(by_path["config.json"].read_text(encoding="utf-8"))
        weights = [blob for path, blob in by_path.items() if path.endswith(".safetensors")]
        count, dtype = info.weights_summary(weights)
        return info.details_from(config, count, dtype)

    # -- whole models -------------------------------------------------------------------------

    def derive(self, name: str | ModelName, base: LocalModel, settings: dict[str, Any]) -> LocalModel:
        """`create NAME` FROM `base` with Modelfile settings (template, system, parameters,
        messages, license: the complete new values). A GGUF-born base keeps Ollama's layout: its
        model, adapter and projector layers and new settings layers, as Ollama's create writes them."""
        if base.ollama is None:
            with self.pinned(f["digest"] for f in base.files):
                return self.write_manifest(name, base.files, repo=base.manifest.get("repo"),
                                           revision=base.manifest.get("revision"), extra=settings)
        kept = [layer for layer in base.ollama.layers if layer.kind in ("model", "adapter", "projector")]
        contents = {
            "template": settings.get("template"), "system": settings.get("system"),
            "license": settings.get("license"),
            "params": json.dumps(settings["parameters"], ensure_ascii=False) if settings.get("parameters") else None,
            "messages": json.dumps(settings["messages"], ensure_ascii=False) if settings.get("messages") else None,
        }
        layers = [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size} for layer in kept]
        digests = [layer.digest for layer in kept]
        for kind in ("template", "system", "license", "params", "messages"):  # Ollama's layer order
            text = contents[kind]
            if text:
                data = str(text).encode()
                digest = self.add_blob(io.BytesIO(data))
                digests.append(digest)
                layers.append({"mediaType": f"application/vnd.ollama.image.{kind}", "digest": digest,
                               "size": len(data)})
        config = base.ollama.config_layer
        digests.append(config.digest)
        if not self.has_blob(config.digest):  # the base's config in the user's Ollama store
            self.add_blob(self._layer_blob(config.digest), config.digest)
        raw = json.dumps({"schemaVersion": 2, "mediaType": OLLAMA_MANIFEST_MEDIA_TYPE,
                          "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
                          "layers": layers}, separators=(",", ":")).encode()
        with self.pinned(digests):
            return self.write_ollama_manifest(name, raw)

    def create_from_folder(self, name: str | ModelName, folder: Path, *, repo: str | None = None,
                           revision: str | None = None, extra: dict[str, Any] | None = None,
                           sources: Iterable[str] = ()) -> LocalModel:
        """Copy a Hugging Face-layout folder into the store under `name` (only what vLLM needs);
        `sources` as in write_manifest."""
        folder = Path(folder)
        files = []
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and not any(p.startswith(".") for p in rel.split("/")) and is_model_file(rel):
                digest = self.add_blob(path)
                files.append({"path": rel, "digest": digest})
        sources = list(sources)
        with self.pinned([*(f["digest"] for f in files), *sources]):
            return self.write_manifest(name, files, repo=repo, revision=revision, extra=extra, sources=sources)

    def copy(self, src: str | ModelName, dst: str | ModelName) -> LocalModel:
        """Give a model a second name; both names share the manifest digest and the blobs."""
        source = src if isinstance(src, ModelName) else ModelName.parse(src)
        target = dst if isinstance(dst, ModelName) else ModelName.parse(dst)
        with self._lock:
            path = self._find(source)
            if path is None:  # a model in the user's Ollama store: its manifest, its blobs stay there
                found = self._find_ollama(source)
                if found is None:
                    raise ModelNotFound(str(src))
                path = found[1]
            atomic_write(self._find(target) or self.manifests_dir.joinpath(*target.parts), path.read_bytes())
        return self.get(target)

    def delete(self, name: str | ModelName) -> None:
        """Remove a name, then the blobs and the folder no other manifest uses."""
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
        with self._lock:
            path = self._find(parsed)
            if path is None:
                found = self._find_ollama(parsed)
                if found is not None:
                    raise ReadOnlyModel(found[0].display, self.ollama.root)  # type: ignore[union-attr]
                raise ModelNotFound(str(name))
            try:
                digests = _manifest_blobs(json.loads(path.read_bytes()))
            except (ValueError, KeyError, TypeError):
                digests = []
            path.unlink()
            self._remove_empty_dirs(path.parent)
            self.prune(digests)

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
            if self.converted_dir.is_dir():  # a conversion goes with the last name, in either store, on its GGUF
                ggufs = used | self._ollama_store_blobs()
                for folder in self.converted_dir.iterdir():
                    if folder.name.startswith("sha256-") and folder.name[7:] not in ggufs:
                        shutil.rmtree(folder, ignore_errors=True)
            return removed

    def _ollama_store_blobs(self) -> set[str]:
        blobs: set[str] = set()
        if self.ollama is None:
            return blobs
        for _, path in self.ollama.manifest_paths():
            try:
                blobs.update(parse_digest(d) for d in _manifest_blobs(json.loads(path.read_bytes())))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return blobs

    def _references(self) -> tuple[set[str], set[str]]:
        """(blob hexes, manifest digests) of every remaining manifest."""
        blobs: set[str] = set()
        manifests: set[str] = set()
        for _, path in self._manifest_paths():
            try:
                raw = path.read_bytes()
                blobs.update(parse_digest(d) for d in _manifest_blobs(json.loads(raw)))
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

    def _ensure_snapshot(self, digest: str, files: Sequence[dict[str, Any]]) -> Path:
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


def _manifest_blobs(data: dict[str, Any]) -> list[str]:
    """The blob digests a manifest of either kind uses (a vllama manifest's sources too)."""
    if is_ollama_manifest(data):
        return [layer["digest"] for layer in [*data["layers"], data["config"]]]
    return [f["digest"] for f in [*data.get("files", []), *data.get("sources", [])]]


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
