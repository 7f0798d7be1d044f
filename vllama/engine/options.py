"""Ollama `options` -> vLLM SamplingParams keyword arguments, with Ollama's defaults and meanings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class OptionError(ValueError):
    """A wrongly typed option, worded as Ollama's `FromMap` words it."""


# Ollama's typed options (api/types.go). Keys not listed here (mirostat, tfs_z, penalize_newline, ...)
# are retired or load-time knobs that vLLM has no use for: ignored, as Ollama ignores unknown keys.
_INT = {"num_predict", "top_k", "repeat_last_n", "seed", "num_keep", "num_ctx", "num_batch",
        "num_gpu", "main_gpu", "num_thread", "draft_num_predict"}
_FLOAT = {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
          "frequency_penalty"}
_BOOL = {"use_mmap", "numa", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "penalize_newline"}

NATIVE_DEFAULTS: dict[str, Any] = {
    "num_predict": -1, "temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0.0, "typical_p": 1.0,
    "repeat_penalty": 1.0, "repeat_last_n": 64, "presence_penalty": 0.0, "frequency_penalty": 0.0,
    "seed": -1, "stop": None, "num_ctx": None,
}


@dataclass
class Options:
    """Validated options; `num_ctx` None means the server's default context."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def num_ctx(self) -> int | None:
        n = self.values.get("num_ctx")
        return n if n and n > 0 else None


def _finite(value: int | float) -> bool:
    # an integer too large for a float (10**400) is as unusable as inf, and math.isfinite raises on it
    return abs(value) < 1e300 if isinstance(value, int) else math.isfinite(value)


def _check(key: str, value: Any) -> Any:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in _INT:
        if not is_number or not _finite(value):
            raise OptionError(f'option "{key}" must be of type integer')
        return int(value)  # Go truncates 2048.7 -> 2048
    if key in _FLOAT:
        if not is_number:
            raise OptionError(f'option "{key}" must be of type float32')
        if not _finite(value):
            raise OptionError(f'option "{key}" must be a finite number')
        return float(value)
    if key in _BOOL:
        if not isinstance(value, bool):
            raise OptionError(f'option "{key}" must be of type boolean')
        return value
    if key == "stop":
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise OptionError(f'option "{key}" must be of an array of strings')
        return [s for s in value if s]
    return value


def parse_options(raw: Any, defaults: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> Options:
    """Merge defaults <- model parameters (`overrides`) <- request options, type-checking the request."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise OptionError("options must be an object")
    values = dict(NATIVE_DEFAULTS if defaults is None else defaults)
    values.update(overrides or {})
    for key, value in raw.items():
        if value is None or key not in (_INT | _FLOAT | _BOOL | {"stop"}):
            continue
        values[key] = _check(key, value)
    return Options(values)


def sampling_kwargs(opts: Options, max_tokens: int) -> dict[str, Any]:
    """Keyword arguments for vllm.SamplingParams. vLLM's ranges are narrower than Ollama's accepted
    values, so out-of-range numbers are clamped to the nearest meaning rather than rejected."""
    v = opts.values
    temperature = min(max(0.0, v["temperature"]), 2.0)  # vLLM refuses more than 2
    top_p = v["top_p"]
    top_p = 1.0 if top_p <= 0 or top_p >= 1 else top_p  # llama.cpp: <= 0 or >= 1 disables top_p
    # 0 = disabled in vLLM; so is a k past any vocabulary (2**70 overflowed the engine's int64)
    top_k = v["top_k"] if 0 < v["top_k"] < 2**31 else 0
    repeat_penalty = v["repeat_penalty"] if v["repeat_penalty"] > 0 else 1.0
    if v["repeat_last_n"] == 0:
        repeat_penalty = 1.0  # Ollama: a window of 0 turns the penalty off
    seed = v["seed"]
    return {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "min_p": min(max(v["min_p"], 0.0), 1.0),
        "repetition_penalty": min(repeat_penalty, 1e4),
        "presence_penalty": min(max(v["presence_penalty"], -2.0), 2.0),
        "frequency_penalty": min(max(v["frequency_penalty"], -2.0), 2.0),
        "seed": None if seed < 0 else seed % (2**63),
        "stop": v["stop"] or None,
    }


def max_new_tokens(num_predict: int, prompt_len: int, context_len: int) -> int:
    """num_predict -1 (and 0, and anything past the window) means "until the context is full"."""
    room = max(context_len - prompt_len, 1)
    return room if num_predict <= 0 else min(num_predict, room)
