"""A tiny Hugging Face-layout model folder: real configs and safetensors, no real weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TOOLS_AND_THINKING = "{% if tools %}{{ tools | tojson }}{% endif %}<think>\\n" + CHATML

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "num_hidden_layers": 2,
    "max_position_embeddings": 256,
    "vocab_size": 100,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
}


def weights(rows: int = 1000) -> dict[str, np.ndarray]:
    """rows x 64 float32 embedding (rows * 256 bytes) plus small F16 norms: F32 dominates."""
    rng = np.random.default_rng(0)
    return {
        "model.embed_tokens.weight": rng.standard_normal((rows, 64)).astype(np.float32),
        "model.norm.weight": np.ones(64, dtype=np.float16),
        "model.layers.0.input_layernorm.weight": np.ones(64, dtype=np.float16),
    }


def write_tiny_model(folder: Path, *, rows: int = 1000, chat_template: str = CHATML,
                     config: dict | None = None, extra: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or CONFIG, indent=2))
    (folder / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.7, "top_p": 0.9, "top_k": 20,
         "repetition_penalty": 1.05}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": {"1": {"content": "<|im_start|>", "special": True},
                                 "2": {"content": "<|im_end|>", "special": True}},
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": chat_template,
    }))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}}}))
    (folder / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    save_file(weights(rows), str(folder / "model.safetensors"))
    for name, data in (extra or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def parameter_count(rows: int = 1000) -> int:
    return rows * 64 + 64 + 64
