"""vLLM engine arguments from flags and environment, with defaults for a small CPU box and for a GPU.

Every AsyncEngineArgs field can be set: the common ones have flags (`--dtype`, `--max-model-len`,
`--tensor-parallel-size`, ...) and env vars (`VLLAMA_DTYPE`, ...); anything else goes through
`--engine-arg key=value` (repeatable) or `VLLAMA_ENGINE_ARGS` as a JSON object.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..config import _env, env_int

# flag name -> (AsyncEngineArgs field, type)
COMMON_ARGS: dict[str, tuple[str, type]] = {
    "dtype": ("dtype", str),
    "max-model-len": ("max_model_len", int),
    "kv-cache-memory-bytes": ("kv_cache_memory_bytes", int),
    "gpu-memory-utilization": ("gpu_memory_utilization", float),
    "tensor-parallel-size": ("tensor_parallel_size", int),
    "pipeline-parallel-size": ("pipeline_parallel_size", int),
    "data-parallel-size": ("data_parallel_size", int),
    "max-num-seqs": ("max_num_seqs", int),
    "quantization": ("quantization", str),
    "distributed-executor-backend": ("distributed_executor_backend", str),
    "enforce-eager": ("enforce_eager", bool),
    "trust-remote-code": ("trust_remote_code", bool),
}

CPU_KV_CACHE_BYTES = 1 << 30  # without a size vLLM's CPU backend reserves most of RAM


def _coerce(value: str, kind: type) -> Any:
    if kind is bool:
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return kind(value)


def parse_engine_arg(item: str) -> tuple[str, Any]:
    """`key=value` with a JSON value when it parses as one (numbers, booleans, objects)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"engine argument must be key=value, got {item!r}")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def on_gpu() -> bool:
    from vllm.platforms import current_platform

    return not current_platform.is_cpu()


@dataclass
class EngineSettings:
    """Engine arguments shared by every model this server loads."""

    overrides: dict[str, Any] = field(default_factory=dict)
    # Run the model worker inside the engine-core process (VLLM_ENABLE_V1_MULTIPROCESSING=0).
    # On a 2-core CPU this measured 1.6x the throughput of vLLM's default three-process layout.
    inproc_worker: bool | None = None

    @classmethod
    def from_env(cls, flags: dict[str, Any] | None = None, extra: list[str] | None = None) -> EngineSettings:
        overrides: dict[str, Any] = {}
        raw = _env("VLLAMA_ENGINE_ARGS")
        if raw:
            overrides.update(json.loads(raw))
        for flag, (name, kind) in COMMON_ARGS.items():
            value = _env("VLLAMA_" + flag.upper().replace("-", "_"))
            if value:
                overrides[name] = _coerce(value, kind)
        for item in extra or []:
            key, value = parse_engine_arg(item)
            overrides[key] = value
        overrides.update({k: v for k, v in (flags or {}).items() if v is not None})
        layout = _env("VLLAMA_ENGINE_LAYOUT")
        inproc = None if not layout else layout == "inproc"
        return cls(overrides=overrides, inproc_worker=inproc)

    def apply_process_env(self) -> None:
        """Must run before vllm is imported: vLLM reads these at import time."""
        inproc = self.inproc_worker
        if inproc is None:
            inproc = not _has_cuda_device()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if inproc else "1")

    def engine_kwargs(self, model_path: str, model_max_len: int | None) -> dict[str, Any]:
        gpu = on_gpu()
        default_ctx = env_int("OLLAMA_CONTEXT_LENGTH", 0) or (32768 if gpu else 4096)
        max_len = min(default_ctx, model_max_len) if model_max_len else default_ctx
        kwargs: dict[str, Any] = {
            "model": model_path,
            "max_model_len": max_len,
            "trust_remote_code": False,
            "enable_log_requests": False,
        }
        if not gpu:
            # fp32 on AVX2; compile mode took 108 s to start here and gained nothing.
            kwargs.update(dtype="float32", enforce_eager=True, kv_cache_memory_bytes=CPU_KV_CACHE_BYTES)
        kwargs.update(self.overrides)
        kwargs["model"] = model_path
        return kwargs


def _has_cuda_device() -> bool:
    return os.path.exists("/dev/nvidia0") or bool(os.environ.get("CUDA_VISIBLE_DEVICES", "").strip(" -1"))
