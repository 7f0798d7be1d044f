"""The memory estimate an engine is sized with (as Ollama sizes its runners), and the budget."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vllama.engine import args as engine_args
from vllama.engine import memory
from vllama.engine.args import EngineSettings

# Qwen2.5-0.5B's shape: 24 layers, 2 KV heads of 64 (896 / 14), bf16 checkpoint
QWEN = {"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896,
        "torch_dtype": "bfloat16", "max_position_embeddings": 32768}
FILES = [{"path": "model.safetensors", "size": 988_097_824}, {"path": "tokenizer.json", "size": 7_000_000},
         {"path": "config.json", "size": 700}]
TOKEN_BYTES = 2 * 24 * 2 * 64 * 2  # K and V, per layer, per KV head, per dim, bf16


@pytest.mark.parametrize("text,expected", [
    ("1073741824", 1 << 30), ("8GiB", 8 << 30), ("8gib", 8 << 30), ("512MB", 512_000_000), ("1.5g", 1_500_000_000),
    (" 2 MiB ", 2 << 20), ("0", 0),
])
def test_parse_bytes(text, expected):
    assert memory.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "8 parsecs", "-1GiB"])
def test_parse_bytes_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="not a size"):
        memory.parse_bytes(text)


def test_kv_shape_and_bytes_follow_ollamas_formula():
    shape = memory.kv_shape(QWEN, 2)
    assert shape == memory.KvShape(layers=24, kv_heads=2, head_dim=64, dtype_bytes=2)
    assert shape.token_bytes == TOKEN_BYTES
    # 2 * layers * kv_heads * head_dim * dtype bytes * context * parallel (+ vLLM's spare blocks)
    assert memory.kv_cache_bytes(shape, 4096, 4) == TOKEN_BYTES * (4096 * 4 + memory.SPARE_TOKENS)


def test_kv_shape_defaults_and_nested_text_config():
    mha = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}  # no GQA: kv heads = heads
    assert memory.kv_shape(mha, 4) == memory.KvShape(2, 4, 16, 4)
    explicit = {**QWEN, "head_dim": 128}
    assert memory.kv_shape(explicit, 2).head_dim == 128
    assert memory.kv_shape({"text_config": QWEN, "vision_config": {}}, 2).layers == 24
    assert memory.kv_shape({"architectures": ["Odd"]}, 2) is None


def test_weights_are_the_safetensors_scaled_to_the_running_dtype():
    assert memory.weights_bytes(FILES, 2, 2) == 988_097_824
    assert memory.weights_bytes(FILES, 2, 4) == 2 * 988_097_824  # bf16 weights run as fp32 on the CPU


def test_estimate_on_cpu_and_gpu():
    cpu = memory.estimate(QWEN, FILES, dtype="float32", context=4096, parallel=1, gpu=False)
    assert cpu.weights == 2 * 988_097_824
    assert cpu.kv_cache == 2 * TOKEN_BYTES * (4096 + memory.SPARE_TOKENS)  # fp32 cache: twice bf16's
    assert cpu.total == cpu.weights + cpu.kv_cache + memory.CPU_ENGINE_OVERHEAD
    gpu = memory.estimate(QWEN, FILES, dtype=None, context=32768, parallel=1, gpu=True)
    assert (gpu.weights, gpu.kv_cache, gpu.overhead) == (
        988_097_824, TOKEN_BYTES * (32768 + memory.SPARE_TOKENS), memory.GPU_ENGINE_OVERHEAD)


def test_budget_is_the_setting_else_free_memory_less_the_overhead():
    device = memory.DeviceMemory(free=20 << 30, total=24 << 30, gpu=True)
    assert memory.budget("8GiB", device, 1 << 30) == 8 << 30
    assert memory.budget(None, device, 1 << 30) == 19 << 30
    assert memory.budget(None, device, 30 << 30) == 0


@pytest.mark.heavy_imports  # torch (tests/conftest.py)
def test_device_memory_reads_cuda_on_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (20 << 30, 24 << 30))
    assert memory.device_memory(gpu=True) == memory.DeviceMemory(20 << 30, 24 << 30, True)
    cpu = memory.device_memory(gpu=False)
    assert not cpu.gpu and 0 < cpu.free <= cpu.total


def test_gpu_sizing_gives_the_kv_cache_and_a_share_of_the_device(monkeypatch):
    monkeypatch.setattr(engine_args, "on_gpu", lambda: True)
    monkeypatch.delenv("OLLAMA_CONTEXT_LENGTH", raising=False)
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "2")
    device = memory.DeviceMemory(free=22 << 30, total=24 << 30, gpu=True)  # a 24 GB GPU
    kwargs = EngineSettings().engine_kwargs("/m", 32768, QWEN, FILES, device)
    kv = TOKEN_BYTES * (32768 * 2 + memory.SPARE_TOKENS)
    assert kwargs["max_model_len"] == 32768 and kwargs["kv_cache_memory_bytes"] == kv
    share = (988_097_824 + kv + memory.GPU_ENGINE_OVERHEAD) / (24 << 30) + engine_args.GPU_SHARE_MARGIN
    assert kwargs["gpu_memory_utilization"] == round(share, 4) and share < 0.2  # never the 0.9 default
    assert "dtype" not in kwargs and "enforce_eager" not in kwargs


def test_gpu_sizing_leaves_a_user_setting_alone(monkeypatch):
    monkeypatch.setattr(engine_args, "on_gpu", lambda: True)
    device = memory.DeviceMemory(free=22 << 30, total=24 << 30, gpu=True)
    kwargs = EngineSettings(overrides={"gpu_memory_utilization": 0.5}).engine_kwargs("/m", 32768, QWEN, FILES, device)
    assert kwargs["gpu_memory_utilization"] == 0.5 and "kv_cache_memory_bytes" not in kwargs
    kwargs = EngineSettings(overrides={"kv_cache_memory_bytes": 1 << 30}).engine_kwargs("/m", 32768, QWEN, FILES,
                                                                                        device)
    assert kwargs["kv_cache_memory_bytes"] == 1 << 30 and "gpu_memory_utilization" not in kwargs


def test_a_big_model_gets_at_most_vllms_default_share(monkeypatch):
    monkeypatch.setattr(engine_args, "on_gpu", lambda: True)
    big = [{"path": "model.safetensors", "size": 46 << 30}]
    kwargs = EngineSettings().engine_kwargs("/m", 32768, QWEN, big, memory.DeviceMemory(40 << 30, 48 << 30, True))
    assert kwargs["gpu_memory_utilization"] == engine_args.MAX_GPU_SHARE


def test_cpu_sizing(monkeypatch):
    monkeypatch.setattr(engine_args, "on_gpu", lambda: False)
    monkeypatch.delenv("OLLAMA_CONTEXT_LENGTH", raising=False)
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    kwargs = EngineSettings().engine_kwargs("/m", 32768, QWEN, FILES)
    assert kwargs["max_model_len"] == 4096
    value_bytes = memory.DTYPE_BYTES[kwargs["dtype"]]  # the CPU's dtype: fp32, or bf16 where it has bf16 units
    parallel = engine_args.CPU_PARALLEL  # the CPU's default, not Ollama's 1 (see EngineSettings.estimate)
    assert kwargs["kv_cache_memory_bytes"] == TOKEN_BYTES // 2 * value_bytes * (4096 * parallel + memory.SPARE_TOKENS)
    assert "gpu_memory_utilization" not in kwargs
    # no config to size from: the fixed CPU cache, as before
    assert EngineSettings().engine_kwargs("/m", 2048)["kv_cache_memory_bytes"] == engine_args.CPU_KV_CACHE_BYTES


def test_allocated_kv_bytes_reads_the_started_engines_blocks():
    model = SimpleNamespace(dtype="torch.bfloat16", get_num_layers=lambda p: 24, get_num_kv_heads=lambda p: 2,
                            get_head_size=lambda: 64)
    config = SimpleNamespace(cache_config=SimpleNamespace(num_gpu_blocks=100, block_size=16, cache_dtype="auto"),
                             model_config=model, parallel_config=None)
    assert memory.allocated_kv_bytes(config) == 100 * 16 * TOKEN_BYTES
    config.cache_config.cache_dtype = "fp8"
    assert memory.allocated_kv_bytes(config) == 100 * 16 * TOKEN_BYTES // 2
    config.cache_config.num_gpu_blocks = None
    assert memory.allocated_kv_bytes(config) == 0
