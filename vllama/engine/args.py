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
from . import cpu_defaults, memory

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

# Without a size vLLM's CPU backend reserves most of RAM: this one is for a model whose config does
# not give its KV cache's shape (the others get one sized for their context, see engine/memory.py).
CPU_KV_CACHE_BYTES = 1 << 30
# Full contexts a CPU engine's KV cache holds by default: about the old fixed 1 GiB for SmolLM2 at
# 4096 tokens, so 32 concurrent chats of a few hundred tokens never wait on the cache.
CPU_PARALLEL = 4
# Set by the user, these size the engine's memory themselves: vllama then leaves them alone.
MEMORY_ARGS = ("kv_cache_memory_bytes", "gpu_memory_utilization")
# vLLM checks at start that the device has free gpu_memory_utilization x total; the share given is
# the estimate's plus this margin for its rounding, never more than vLLM's own default.
GPU_SHARE_MARGIN = 0.01
MAX_GPU_SHARE = 0.9


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

    @staticmethod
    def preload_cpu_libraries() -> None:
        """`vllama serve`, first thing: on a CPU machine, start again with tcmalloc and Intel OpenMP
        preloaded where they exist (engine/cpu_defaults.py; VLLAMA_CPU_PRELOAD=0 turns it off)."""
        cpu_defaults.reexec_with_preload()

    def apply_process_env(self) -> None:
        """Must run before vllm is imported: vLLM reads these at import time."""
        inproc = self.inproc_worker
        cuda = _has_cuda_device()
        if inproc is None:
            inproc = not cuda
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if inproc else "1")
        if not cuda:
            cpu_defaults.apply()  # OpenMP threads from the cores (engine/cpu_defaults.py has the measurements)

    def context_length(self, model_max_len: int | None, gpu: bool, wanted: int = 0) -> int:
        """The context an engine serves: OLLAMA_CONTEXT_LENGTH (or a default), or a request's larger
        num_ctx (`wanted`), at most the model's."""
        if self.overrides.get("max_model_len"):
            return int(self.overrides["max_model_len"])  # the user's, as vLLM takes it
        default_ctx = max(env_int("OLLAMA_CONTEXT_LENGTH", 0) or (32768 if gpu else 4096), wanted)
        return min(default_ctx, model_max_len) if model_max_len else default_ctx

    def estimate(self, config: dict[str, Any], files: list[dict[str, Any]], model_max_len: int | None,
                 gpu: bool, context: int = 0) -> memory.Estimate:
        """What an engine for this model holds: weights, a KV cache for its context and
        OLLAMA_NUM_PARALLEL sequences, overhead. vLLM batches any number of requests inside that
        cache; the default sizes it for Ollama's 1 full context on a GPU (memory is scarce there) and
        for CPU_PARALLEL on the CPU, where concurrent streams are vllama's point and RAM is cheap."""
        dtype = self.overrides.get("dtype") or (None if gpu else "float32")
        parallel = env_int("OLLAMA_NUM_PARALLEL", 0) or (1 if gpu else CPU_PARALLEL)
        est = memory.estimate(config, files, dtype=dtype, context=self.context_length(model_max_len, gpu, context),
                              parallel=parallel, gpu=gpu)
        if not est.kv_cache and not gpu:
            est = memory.Estimate(est.weights, CPU_KV_CACHE_BYTES, est.overhead)
        user_kv = self.overrides.get("kv_cache_memory_bytes")
        if user_kv:
            est = memory.Estimate(est.weights, int(user_kv), est.overhead)
        return est

    def engine_kwargs(self, model_path: str, model_max_len: int | None, config: dict[str, Any] | None = None,
                      files: list[dict[str, Any]] | None = None,
                      device: memory.DeviceMemory | None = None, context: int = 0,
                      reasoning_parser: str | None = None) -> dict[str, Any]:
        """vLLM's arguments for one model. With its config and files, the KV cache is sized for its
        context (`kv_cache_memory_bytes`, on a GPU too, with a `gpu_memory_utilization` share of the
        device's total that fits the estimate) unless the user sized it. With a `reasoning_parser`
        (vLLM's name, engine/parsers.py), structured outputs wait for the reasoning to end in requests
        that let the model think (the runner passes `reasoning_ended=True` to those that do not)."""
        gpu = on_gpu()
        kwargs: dict[str, Any] = {
            "model": model_path,
            "max_model_len": self.context_length(model_max_len, gpu, context),
            "trust_remote_code": False,
            "enable_log_requests": False,
        }
        if not gpu:
            # float32 even where the CPU has bf16 units (AMX): bf16 ran 20-30 % faster there, but it changes
            # what small models answer (SmolLM2-135M greedy: "The capital of France is Paris." in float32,
            # "L'Étoile, la Marseillaise, ..." in bfloat16). `--dtype bfloat16` opts in.
            # Compile mode took 108 s to start here and gained nothing.
            kwargs.update(dtype="float32", enforce_eager=True, kv_cache_memory_bytes=CPU_KV_CACHE_BYTES)
        if not any(name in self.overrides for name in MEMORY_ARGS):
            kwargs.update(self.memory_kwargs(config or {}, files or [], model_max_len, gpu, device, context))
        if reasoning_parser:
            # Only the structured-output config's: vLLM's engine-wide `reasoning_parser` argument also
            # builds the parser at start (a load failure for a tokenizer without its tokens) and turns
            # on the thinking-budget machinery, which vllama does not use.
            kwargs["structured_outputs_config"] = {"reasoning_parser": reasoning_parser}
        kwargs.update(self.overrides)
        kwargs["model"] = model_path
        return kwargs

    def memory_kwargs(self, config: dict[str, Any], files: list[dict[str, Any]], model_max_len: int | None,
                      gpu: bool, device: memory.DeviceMemory | None, context: int = 0) -> dict[str, Any]:
        est = self.estimate(config, files, model_max_len, gpu, context)
        if not est.kv_cache:
            return {}  # no shape to size from: vLLM's own default on a GPU, the fixed size on the CPU
        sized: dict[str, Any] = {"kv_cache_memory_bytes": est.kv_cache}
        if gpu:
            device = device or memory.device_memory(gpu=True)
            share = est.total / max(1, device.total) + GPU_SHARE_MARGIN
            sized["gpu_memory_utilization"] = round(min(MAX_GPU_SHARE, share), 4)
        return sized

    def pooling_memory_kwargs(self, config: dict[str, Any], files: list[dict[str, Any]],
                              max_len: int) -> dict[str, Any]:
        """An embedding model's share of a GPU, sized as engine_kwargs sizes a generation model's
        (on the CPU its engine keeps the fixed cache: nothing here)."""
        if not on_gpu() or any(name in self.overrides for name in MEMORY_ARGS):
            return {}
        return self.memory_kwargs(config, files, max_len, True, None)


def _has_cuda_device() -> bool:
    return os.path.exists("/dev/nvidia0") or bool(os.environ.get("CUDA_VISIBLE_DEVICES", "").strip(" -1"))
