"""vLLM's arguments for a GGUF it loads as is: weights stay quantised, on a GPU only.

Since vLLM 0.24 GGUF loading lives in the vllm-gguf-plugin (`pip install 'vllama[gpu-gguf]'`), which
registers quantization and load format "gguf" and has CUDA kernels only. Where it is installed
and the platform is a GPU, a GGUF-born model (the user's Ollama store, Ollama's registry, an
`hf.co/...:Q4_K_M` pull) is served from its GGUF: `model` is the GGUF file, `hf_config_path` and
`tokenizer` a folder written from the GGUF's metadata (models/gguf_config.py). Everywhere else
(the CPU backend, a GPU without the plugin) the GGUF is dequantised once, as store.servable does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import args

if TYPE_CHECKING:
    from ..models.store import LocalModel

GGUF_PLUGIN = "vllm_gguf_plugin"


def plugin_installed() -> bool:
    return importlib.util.find_spec(GGUF_PLUGIN) is not None


def gguf_runs_natively() -> bool:
    """Whether vLLM here can load GGUF weights quantised: a GPU platform with the plugin installed."""
    return args.on_gpu() and plugin_installed()


def native_gguf(model: LocalModel, store_root: Path) -> tuple[Path, Path] | None:
    """(the GGUF, its config folder) when `model` is served from its GGUF as is, else None.

    Not for embedding models (the embedder loads a dequantised folder), split GGUFs or adapter
    layers (vLLM loads one file and no GGUF LoRA): those take the dequantising path, which says
    why when it cannot serve them either."""
    m = model.ollama
    if m is None or m.model_path is None or m.model_layer is None or not gguf_runs_natively():
        return None
    if "embedding" in model.capabilities or m.adapter_paths or sum(layer.kind == "model" for layer in m.layers) > 1:
        return None
    from ..models.gguf_config import CONFIG_DIR, gguf_config_dir

    return m.model_path, gguf_config_dir(store_root / CONFIG_DIR, m.model_path, m.model_layer.digest)


def gguf_engine_kwargs(kwargs: dict[str, Any], gguf: Path, config_dir: Path) -> dict[str, Any]:
    """`kwargs` (EngineSettings.engine_kwargs of the model) turned to load `gguf` itself."""
    return {
        **kwargs,
        "model": str(gguf),
        "tokenizer": str(config_dir),
        "hf_config_path": str(config_dir),
        "quantization": "gguf",
        "load_format": "gguf",
    }
