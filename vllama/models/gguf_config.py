"""The config and tokenizer folder vLLM needs beside a GGUF it loads as is (on a GPU).

vLLM's GGUF loader (the vllm-gguf-plugin since vLLM 0.24) keeps the weights quantised but takes
the model's config and tokenizer from a Hugging Face folder (`hf_config_path`, `tokenizer`). For a
GGUF from the user's Ollama store or the Hub there is none, so one is written from the GGUF's own
metadata, once per GGUF: config.json, generation_config.json and the tokenizer files (with the
GGUF's Jinja chat template, the fallback when the model has no Ollama template layer). No weights:
a few megabytes, against the dequantised checkpoint the CPU backend needs.

The folder appears whole or not at all (written beside it, then renamed into place).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .gguf import _fix_tokenizer_config

CONFIG_DIR = "gguf-config"
"""The folder under vllama's store root that holds these, one `sha256-<GGUF digest>` each."""


def gguf_config_dir(root: Path, gguf: Path, digest: str) -> Path:
    """`root/sha256-<hex>`: the config folder for the GGUF with that digest, written on first use."""
    folder = root / digest.replace(":", "-", 1)
    if (folder / "config.json").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=root))
    try:
        _write(gguf, work)
        try:
            work.rename(folder)
        except OSError:  # another process finished it first
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _write(gguf: Path, dest: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    source = dest / ".source"
    source.mkdir()
    try:
        link = source / "model.gguf"  # transformers reads GGUF only from a name that says so
        link.symlink_to(gguf.resolve())
        config = AutoConfig.from_pretrained(str(source), gguf_file=link.name, local_files_only=True)
        vars(config).pop("quantization_config", None)  # vLLM takes the quantization from its own argument
        config.save_pretrained(dest)
        GenerationConfig.from_model_config(config).save_pretrained(dest)
        tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=link.name, local_files_only=True)
        tokenizer.save_pretrained(dest)
        _fix_tokenizer_config(dest, tokenizer, config)  # as the dequantised folder has it
    finally:
        shutil.rmtree(source, ignore_errors=True)
