"""How much memory a model's engine needs, and how much the server may give its engines.

Sized as Ollama sizes its runners: the weights, a KV cache for the context and the parallel
sequences the model serves (2 * layers * kv_heads * head_dim * dtype bytes per token), and a fixed
overhead for what an engine holds besides (Ollama's graph and CUDA context; vLLM's activations and
sampler). The KV part is what vLLM is given as `kv_cache_memory_bytes`, so the estimate is also
what the engine takes, on the CPU and on a GPU alike. Pure functions, except `device_memory`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MiB = 1 << 20
GiB = 1 << 30

# What an engine holds besides its weights and KV cache: on a GPU the CUDA context, activations
# and CUDA graphs vLLM profiles at start (Ollama reserves its graph and a per-GPU minimum of about
# 457 MiB); on the CPU the engine-core process's heap besides the weights.
GPU_ENGINE_OVERHEAD = 768 * MiB
CPU_ENGINE_OVERHEAD = 256 * MiB
# vLLM needs room for one sequence of the full context; a few spare blocks cover its rounding.
SPARE_TOKENS = 256

DTYPE_BYTES = {"float32": 4, "float": 4, "fp32": 4, "bfloat16": 2, "float16": 2, "half": 2, "fp16": 2,
               "bf16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "float8_e4m3fn": 1}

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2, "mib": MiB,
          "g": 1000**3, "gb": 1000**3, "gib": GiB, "t": 1000**4, "tb": 1000**4, "tib": 1 << 40}


def parse_bytes(text: str) -> int:
    """`8GiB`, `512 MB`, `1.5g` or a plain number of bytes (as OLLAMA_GPU_OVERHEAD takes)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size in bytes: {text!r} (e.g. 8GiB, 512MB, 1073741824)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class KvShape:
    """What one token costs in the KV cache: keys and values for each layer's KV heads."""

    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int

    @property
    def token_bytes(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """A multimodal config keeps its language model's shape under `text_config`."""
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) and "num_hidden_layers" in inner else config


def dtype_bytes(dtype: str | None, config: dict[str, Any]) -> int:
    """Bytes per value the engine runs in: the dtype asked for, else ("auto") the checkpoint's."""
    name = (dtype or "auto").lower()
    if name == "auto":
        name = str(_text_config(config).get("torch_dtype") or config.get("torch_dtype") or "bfloat16")
    return DTYPE_BYTES.get(name.removeprefix("torch."), 2)


def kv_shape(config: dict[str, Any], value_bytes: int) -> KvShape | None:
    """The KV cache's per-token shape from a Hugging Face config.json; None when it does not say."""
    text = _text_config(config)
    layers, heads = text.get("num_hidden_layers"), text.get("num_attention_heads")
    if not isinstance(layers, int) or not isinstance(heads, int) or heads <= 0:
        return None
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or (int(text.get("hidden_size") or 0) // heads)
    if not head_dim:
        return None
    return KvShape(layers, int(kv_heads), int(head_dim), value_bytes)


def kv_cache_bytes(shape: KvShape, context: int, parallel: int) -> int:
    """Room for `parallel` sequences of `context` tokens, plus vLLM's spare blocks."""
    return shape.token_bytes * (context * max(1, parallel) + SPARE_TOKENS)


def weights_bytes(files: list[dict[str, Any]], stored_bytes: int, run_bytes: int) -> int:
    """The weights in memory: the safetensors files' size, scaled when the engine runs them in
    another dtype (bf16 weights take twice their size as fp32 on the CPU)."""
    on_disk = sum(int(f.get("size") or 0) for f in files if str(f.get("path", "")).endswith(".safetensors"))
    return on_disk * run_bytes // max(1, stored_bytes)


@dataclass(frozen=True)
class Estimate:
    """What one engine will hold."""

    weights: int
    kv_cache: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead


def estimate(config: dict[str, Any], files: list[dict[str, Any]], *, dtype: str | None, context: int,
             parallel: int, gpu: bool) -> Estimate:
    """A model's engine: weights + KV cache for `parallel` x `context` tokens + the engine's overhead.
    A config without a KV shape (an unusual architecture) gets no KV estimate: vLLM sizes it."""
    run = dtype_bytes(dtype, config)
    stored = dtype_bytes("auto", config)
    shape = kv_shape(config, run)
    kv = kv_cache_bytes(shape, context, parallel) if shape else 0
    return Estimate(weights_bytes(files, stored, run), kv, GPU_ENGINE_OVERHEAD if gpu else CPU_ENGINE_OVERHEAD)


@dataclass(frozen=True)
class DeviceMemory:
    free: int
    total: int
    gpu: bool


def device_memory(gpu: bool) -> DeviceMemory:
    """The device's free and total memory now: the GPU's (CUDA's own count) or the machine's RAM."""
    if gpu:
        import torch

        free, total = torch.cuda.mem_get_info()
        return DeviceMemory(int(free), int(total), True)
    import psutil

    vm = psutil.virtual_memory()
    return DeviceMemory(int(vm.available), int(vm.total), False)


def budget(configured: str | None, device: DeviceMemory, overhead: int) -> int:
    """Bytes the engines may hold together: VLLAMA_MEMORY when set, else what the device has free
    when the server starts, less the reserve the operator keeps back (OLLAMA_GPU_OVERHEAD)."""
    if configured:
        return parse_bytes(configured)
    return max(0, device.free - overhead)


def allocated_kv_bytes(vllm_config: Any) -> int:
    """The KV cache a started engine really allocated: its blocks times the bytes of a block."""
    cache, model = vllm_config.cache_config, vllm_config.model_config
    blocks = cache.num_gpu_blocks or 0
    if not blocks:
        return 0
    cache_dtype = str(cache.cache_dtype)
    value_bytes = DTYPE_BYTES.get(str(model.dtype).removeprefix("torch."), 2) if cache_dtype == "auto" \
        else DTYPE_BYTES.get(cache_dtype, 2)
    parallel = vllm_config.parallel_config
    shape = KvShape(model.get_num_layers(parallel), model.get_num_kv_heads(parallel), model.get_head_size(),
                    value_bytes)
    return blocks * cache.block_size * shape.token_bytes
