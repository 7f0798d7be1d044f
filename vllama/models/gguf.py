"""Turn a GGUF file into a Hugging Face folder that vLLM loads.

vLLM's CPU backend cannot run GGUF weights, so a GGUF is unpacked once, on import, into a plain
dense checkpoint: config.json, generation_config.json, the tokenizer (tokenizer.json,
tokenizer_config.json, chat_template.jinja) and model.safetensors. transformers does the work
(`from_pretrained(..., gguf_file=..., quantization_config=GgufConfig(dequantize=True))`, which
needs the `gguf` and `accelerate` packages).

Weights are written in float32 by default. The engine runs float32 on CPU, and a GGUF block's
values (`scale * q + min`, with float16 scale and min) are not all representable in bfloat16 or
float16, so float32 is the only dtype that keeps the model's output identical to the GGUF's.

The folder appears whole or not at all: everything is written to a hidden sibling folder that is
renamed into place at the end.
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import shutil
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

SOURCE_FILE = "vllama_source.json"
"""Written next to the weights: where the folder came from (the GGUF's name, its quantization, and
its `general.*` metadata, which /api/show prints as Ollama prints it for the GGUF)."""

# general.* keys the dequantised folder answers itself (from the weights it holds), or Ollama drops
_GENERAL_OWN = ("general.name", "general.architecture", "general.file_type", "general.parameter_count")

_TOKENIZER_CONFIG_DROP = ("is_local", "local_files_only")


def dequantize_gguf(
    gguf_path: Path,
    out_dir: Path,
    *,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Write `out_dir`, a Hugging Face model folder holding the dequantized `gguf_path`; return it.

    Raises FileExistsError when `out_dir` exists (unless `overwrite`), FileNotFoundError when
    the GGUF is missing. When a concurrent import of the same folder finishes first, this one
    discards its copy and returns that folder.
    """
    gguf_path = Path(gguf_path).resolve()
    out_dir = Path(out_dir)
    if not gguf_path.is_file():
        raise FileNotFoundError(f"no GGUF file at {gguf_path}")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists")
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    _sweep_stale_partials(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{os.getpid()}.", suffix=".partial", dir=out_dir.parent))
    try:
        _in_child(_write_folder, gguf_path, tmp, dtype)
        _move_into_place(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


STALE_PARTIAL_S = 3600  # a partial folder without its writer's pid (older versions) is left this long


def _sweep_stale_partials(out_dir: Path) -> None:
    """Remove what killed imports of `out_dir` left: partial folders whose writing process is gone
    (its pid is in the name; an import in progress elsewhere keeps its own)."""
    for partial in out_dir.parent.glob(f".{out_dir.name}.*.partial"):
        pid = partial.name[len(out_dir.name) + 2:].split(".", 1)[0]
        try:
            stale = not _alive(int(pid)) if pid.isdigit() else time.time() - partial.stat().st_mtime > STALE_PARTIAL_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_child(func: Callable[..., None], *args: Any) -> None:
    """Run `func` in a spawned process and wait: the torch kernels of a dequantisation stay out of
    the caller (a server that forks its engine cores must never have run one, see
    vllama/engine/launch.py), and so does the whole model's memory, given back when the child exits."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(func, *args).result()


def _write_folder(gguf_path: Path, dest: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    torch_dtype = getattr(torch, dtype)
    source = dict(pretrained_model_name_or_path=str(gguf_path.parent), gguf_file=gguf_path.name)

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(**source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            **source,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch_dtype,
            local_files_only=True,
        )
        # The dense model is an ordinary checkpoint now: it must not claim to be GGUF-quantized.
        for config in (model.config, model.config.get_text_config()):
            vars(config).pop("quantization_config", None)
        model.hf_quantizer = None  # type: ignore[assignment]
        model.save_pretrained(dest)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(dest)
    _fix_tokenizer_config(dest, tokenizer, model.config)
    (dest / SOURCE_FILE).write_text(json.dumps(_describe(gguf_path, dtype), indent=2) + "\n")
    _open_permissions(dest)


def _fix_tokenizer_config(dest: Path, tokenizer, config) -> None:
    """Drop load-time keys transformers writes, bound the length, and inline the chat template.

    transformers 5 puts the template in chat_template.jinja only; a copy in tokenizer_config.json
    serves readers that predate that file (older transformers, tools that read the JSON).
    """
    path = dest / "tokenizer_config.json"
    data = json.loads(path.read_text())
    for key in _TOKENIZER_CONFIG_DROP:
        data.pop(key, None)
    max_len = getattr(config, "max_position_embeddings", None)
    if max_len:
        data["model_max_length"] = int(max_len)
    if isinstance(tokenizer.chat_template, str) and "chat_template" not in data:
        data["chat_template"] = tokenizer.chat_template
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _describe(gguf_path: Path, dtype: str) -> dict:
    metadata, kinds = _read_header(gguf_path)
    file_type = None
    if "general.file_type" in metadata:
        from gguf import LlamaFileType

        try:
            file_type = LlamaFileType(int(metadata["general.file_type"])).name.removeprefix("MOSTLY_")
        except ValueError:
            file_type = None
    return {
        "format": "gguf",
        "gguf_file": gguf_path.name,
        "gguf_size": gguf_path.stat().st_size,
        "architecture": metadata.get("general.architecture"),
        "file_type": file_type or (kinds.most_common(1)[0][0] if kinds else None),
        "tensor_types": dict(kinds.most_common()),
        "dtype": dtype,
        "general": _general(gguf_path),
    }


def _general(gguf_path: Path) -> dict[str, object]:
    """The GGUF's general.* metadata as /api/show prints it (arrays as null), less _GENERAL_OWN."""
    try:
        metadata = read_header(gguf_path).metadata
    except (OSError, ValueError, struct.error):
        return {}
    return {k: v for k, v in metadata.items() if k.startswith("general.") and k not in _GENERAL_OWN}


def source_general(folder: Path) -> dict[str, object]:
    """The general.* metadata of the GGUF a dequantised folder came from; {} for any other folder
    (or one dequantised before this was recorded)."""
    try:
        source = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    general = source.get("general") if isinstance(source, dict) else None
    if not isinstance(general, dict):
        return {}
    return {k: v for k, v in general.items()
            if isinstance(k, str) and k.startswith("general.") and k not in _GENERAL_OWN}


def _read_header(gguf_path: Path) -> tuple[dict, Counter]:
    """The GGUF's scalar metadata and a count of its tensor types, without reading tensor data.

    transformers' header reader takes milliseconds; `gguf.GGUFReader` (the fallback, should that
    internal module move) takes seconds, because it parses the whole vocabulary.
    """
    from gguf import GGMLQuantizationType

    try:
        from transformers.integrations.gguf.reader import GgufHeader, read_gguf_metadata
    except ImportError:
        from gguf import GGUFReader

        reader = GGUFReader(gguf_path)
        metadata = {}
        for key in ("general.architecture", "general.file_type"):
            if key in reader.fields:
                metadata[key] = reader.fields[key].contents()
        return metadata, Counter(t.tensor_type.name for t in reader.tensors)
    metadata, _ = read_gguf_metadata(str(gguf_path))
    types = GgufHeader.from_file(str(gguf_path)).ggml_types.values()
    return metadata, Counter(GGMLQuantizationType(t).name for t in types)


def _open_permissions(dest: Path) -> None:
    """mkdtemp makes the folder private and safetensors writes 0600 files; give them the umask's modes."""
    umask = os.umask(0)
    os.umask(umask)
    dest.chmod(0o777 & ~umask)
    for path in dest.iterdir():
        path.chmod(0o666 & ~umask)


def _move_into_place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    if overwrite and out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
        os.rename(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if (out_dir / "config.json").is_file():  # another import finished first; keep its folder
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise


# -- reading a GGUF's header ------------------------------------------------------------------
# What /api/show says about a GGUF-born model (model_info, tensors, the quantization) comes from
# its header, read here without torch or the tensor data: mmap and struct, milliseconds.

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY, _F32 = 8, 9, 6
_U64 = struct.Struct("<Q")  # a string's length


@dataclass(frozen=True)
class GgufTensor:
    name: str
    ggml_type: int
    shape: tuple[int, ...]  # ggml order (fastest-moving first), as Ollama's show prints it


@dataclass(frozen=True)
class GgufHeader:
    """A GGUF's metadata (arrays as None: Ollama's show prints them as null) and tensor table."""

    metadata: dict[str, object]
    tensors: tuple[GgufTensor, ...]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture") or "")

    @property
    def parameter_count(self) -> int:
        return sum(prod(t.shape) for t in self.tensors)

    @property
    def file_type(self) -> str:
        """Ollama's quantization level: `Q4_1`, `Q4_K_M`, `F16`..., from general.file_type."""
        value = self.metadata.get("general.file_type")
        return file_type_name(value) if isinstance(value, int) else ""

    def key(self, suffix: str) -> object:
        """`<architecture>.<suffix>`, e.g. key("context_length")."""
        return self.metadata.get(f"{self.architecture}.{suffix}")


def file_type_name(value: int) -> str:
    from gguf import LlamaFileType

    try:
        name = LlamaFileType(value).name
    except ValueError:
        return str(value)
    return "F32" if name == "ALL_F32" else name.removeprefix("MOSTLY_")


def ggml_type_name(value: int) -> str:
    from gguf import GGMLQuantizationType

    try:
        return GGMLQuantizationType(value).name
    except ValueError:
        return str(value)


def read_header(path: Path) -> GgufHeader:
    """Parse a GGUF file's metadata and tensor table; ValueError when it is not a GGUF v2/v3."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as blob:
        if blob[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, tensor_count, kv_count = struct.unpack_from("<IQQ", blob, 4)
        if version not in (2, 3):
            raise ValueError(f"{path} is GGUF v{version}; v2 and v3 are read")
        pos = 24
        metadata: dict[str, object] = {}
        for _ in range(kv_count):
            key, pos = _string(blob, pos)
            (kind,) = struct.unpack_from("<I", blob, pos)
            metadata[key], pos = _value(blob, pos + 4, kind)
        tensors = []
        for _ in range(tensor_count):
            name, pos = _string(blob, pos)
            (dims,) = struct.unpack_from("<I", blob, pos)
            shape = struct.unpack_from(f"<{dims}Q", blob, pos + 4)
            pos += 4 + 8 * dims
            ggml_type, _offset = struct.unpack_from("<IQ", blob, pos)
            pos += 12
            tensors.append(GgufTensor(name, ggml_type, tuple(shape)))
    return GgufHeader(metadata, tuple(tensors))


def _string(blob, pos: int) -> tuple[str, int]:
    (length,) = _U64.unpack_from(blob, pos)
    start = pos + 8
    return bytes(blob[start:start + length]).decode("utf-8", errors="replace"), start + length


def _value(blob, pos: int, kind: int) -> tuple[object, int]:
    if kind == _F32:  # the shortest decimal that is this float32, as Go prints it (1e-05, not 9.99e-06)
        return _shortest_f32(struct.unpack_from("<f", blob, pos)[0]), pos + 4
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack_from(fmt, blob, pos)[0], pos + struct.calcsize(fmt)
    if kind == _STRING:
        return _string(blob, pos)
    if kind == _ARRAY:
        item, count = struct.unpack_from("<IQ", blob, pos)
        pos += 12
        if item in _SCALARS:
            return None, pos + count * struct.calcsize(_SCALARS[item])
        if item == _STRING:  # a vocabulary (100k strings): step over each by its length, unread
            for _ in range(count):
                pos += 8 + _U64.unpack_from(blob, pos)[0]
            return None, pos
        for _ in range(count):  # nested arrays: walk them to find the end
            _, pos = _value(blob, pos, item)
        return None, pos
    raise ValueError(f"unknown GGUF metadata type {kind}")


def _shortest_f32(value: float) -> float | int:
    for places in range(1, 10):
        short = float(f"{value:.{places}g}")
        if struct.unpack("<f", struct.pack("<f", short))[0] == value:
            break
    else:
        short = value
    return int(short) if short.is_integer() and abs(short) < 2**53 else short


def show_model_info(header: GgufHeader) -> dict[str, object]:
    """/api/show's model_info for a GGUF, as Ollama prints it: every key but the name and chat
    template, arrays as null, keys sorted."""
    info = {k: v for k, v in header.metadata.items() if k not in ("general.name", "tokenizer.chat_template")}
    info["general.parameter_count"] = header.parameter_count
    return dict(sorted(info.items()))


def show_tensors(header: GgufHeader) -> list[dict[str, object]]:
    return [{"name": t.name, "type": ggml_type_name(t.ggml_type), "shape": list(t.shape)} for t in header.tensors]
