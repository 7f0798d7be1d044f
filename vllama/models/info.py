"""Facts about a model, from its Hugging Face folder: architecture, size, capabilities, template,
default parameters, license. The API layer renders them the Ollama way (vllama.api.ollama.show).

Ollama reads these facts from GGUF metadata; here they come from config.json,
generation_config.json, the tokenizer config and the safetensors headers (only the JSON header of
each file is read, never the weights). What a request needs is computed once per manifest digest.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .vllm_archs import runs_multimodal

if TYPE_CHECKING:
    from .store import LocalModel

# Hugging Face model_type -> the architecture name Ollama (GGUF) uses for the same family.
_ARCH = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen2_moe": "qwen2moe",
    "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3",
    "gemma3_text": "gemma3", "gemma3n": "gemma3n", "phi": "phi2", "phi3": "phi3", "phimoe": "phimoe",
    "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "nomic_bert": "nomic-bert",
    "modernbert": "modernbert", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2",
    "starcoder2": "starcoder2", "gpt2": "gpt2", "falcon": "falcon", "olmo": "olmo", "olmo2": "olmo2",
    "granite": "granite", "granitemoe": "granitemoe", "cohere": "command-r", "cohere2": "cohere2",
    "mllama": "mllama", "llama4": "llama4", "mistral3": "mistral3", "gpt_oss": "gptoss",
    "qwen2_vl": "qwen2vl", "qwen2_5_vl": "qwen25vl", "stablelm": "stablelm", "smollm3": "smollm3",
}
_ENCODERS = {"bert", "roberta", "xlm-roberta", "nomic_bert", "modernbert", "distilbert", "mpnet", "electra"}
_THINKING = re.compile(r"<think>|</think>|reasoning_content|enable_thinking|<\|channel\|>")
_MAX_HEADER = 100 << 20


# -- weights ----------------------------------------------------------------------------------

def safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a .safetensors file: {name: {dtype, shape, data_offsets}}."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > _MAX_HEADER:
            raise ValueError(f"{path}: safetensors header too large")
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header


def weights_summary(paths: Iterable[Path]) -> tuple[int, str | None]:
    """(parameter count, the dtype holding most parameters) over safetensors files."""
    per_dtype: Counter[str] = Counter()
    for path in paths:
        for tensor in safetensors_header(path).values():
            per_dtype[tensor["dtype"]] += math.prod(tensor["shape"])
    return sum(per_dtype.values()), (per_dtype.most_common(1)[0][0] if per_dtype else None)


def human_number(n: int) -> str:
    """Ollama's format.HumanNumber: 134515008 -> "134.52M", 8030261248 -> "8.0B"."""
    for unit, size, places in (("B", 10**9, 1), ("M", 10**6, 2)):
        if n >= size:
            value = n / size
            return f"{value:.0f}{unit}" if value == math.floor(value) else f"{value:.{places}f}{unit}"
    return f"{n / 1000:.0f}K" if n >= 1000 else str(n)


def quantization_level(config: dict[str, Any], dtype: str | None) -> str:
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method"):
        bits = quant.get("bits") or quant.get("w_bit")
        return f"{str(quant['quant_method']).upper()}" + (f"_Q{bits}" if bits else "")
    if dtype in ("F8_E4M3", "F8_E5M2"):
        return "FP8"
    return dtype or "unknown"


def architecture(config: dict[str, Any]) -> str:
    model_type = str(config.get("model_type") or "")
    if not model_type:
        archs = config.get("architectures") or ["unknown"]
        model_type = re.sub(r"(For\w+|Model|LMHeadModel)$", "", str(archs[0])).lower()
    return _ARCH.get(model_type, model_type.replace("_", ""))


DETAIL_KEYS = ("parent_model", "format", "family", "families", "parameter_size", "quantization_level")


def ordered_details(details: dict[str, Any]) -> dict[str, Any]:
    """Ollama's key order, whatever order a manifest was written in."""
    return {**{k: details[k] for k in DETAIL_KEYS if k in details}, **details}


def details_from(config: dict[str, Any], parameter_count: int | None, dtype: str | None) -> dict[str, Any]:
    family = architecture(config)
    return {
        "parent_model": "",
        "format": "safetensors",
        "family": family,
        "families": [family],
        "parameter_size": human_number(parameter_count) if parameter_count else "",
        "quantization_level": quantization_level(config, dtype),
    }


# -- files of a local model -------------------------------------------------------------------

def _file_text(model: LocalModel, path: str) -> str | None:
    try:
        return (model.path / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _file_json(model: LocalModel, path: str) -> dict[str, Any]:
    text = _file_text(model, path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _paths(model: LocalModel) -> set[str]:
    return {f["path"] for f in model.files}


def _chat_template(model: LocalModel) -> str:
    """The Jinja chat template: chat_template.jinja, chat_template.json or tokenizer_config.json."""
    if "chat_template.jinja" in _paths(model):
        return _file_text(model, "chat_template.jinja") or ""
    for source in ("chat_template.json", "tokenizer_config.json"):
        template = _file_json(model, source).get("chat_template")
        if isinstance(template, list):  # named templates: take "default"
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default") or next(iter(named.values()), None)
        if isinstance(template, str) and template:
            return template
    return ""


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs nest the language model's numbers under text_config."""
    inner = config.get("text_config")
    return {**config, **inner} if isinstance(inner, dict) else config


def trained_context(config: dict[str, Any]) -> int | None:
    """The language model's own context (`max_position_embeddings`), under text_config in a
    vision-language config (Idefics3, LLaVA, Gemma3), where the top level has none."""
    value = text_config(config).get("max_position_embeddings")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def is_embedding(model: LocalModel) -> bool:
    if "modules.json" in _paths(model):  # a sentence-transformers model
        return True
    archs = [str(a) for a in model.config.get("architectures") or []]
    if any(a.endswith(("ForCausalLM", "ForConditionalGeneration", "LMHeadModel")) for a in archs):
        return False
    return str(model.config.get("model_type")) in _ENCODERS


# Fill-in-the-middle token families, as (prefix, suffix, middle): Ollama's FIM order is prefix,
# prompt, suffix marker, suffix, middle marker (the model writes the middle after it).
FIM_TOKENS: tuple[tuple[str, str, str], ...] = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder / StarCoder2
    ("\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>"),  # CodeLlama (sentencepiece pieces)
    ("<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>"),  # DeepSeek-Coder
)


def fim_tokens(vocabulary: Iterable[str]) -> tuple[str, str, str] | None:
    """The FIM triple a tokenizer with this vocabulary has, if any."""
    tokens = set(vocabulary)
    return next((triple for triple in FIM_TOKENS if all(t in tokens for t in triple)), None)


def _tokenizer_tokens(model: LocalModel) -> set[str]:
    """The special and added tokens the tokenizer files name (not the whole BPE vocabulary)."""
    config = _file_json(model, "tokenizer_config.json")
    decoder = config.get("added_tokens_decoder") or {}
    tokens = {e["content"] for e in decoder.values() if isinstance(e, dict) and isinstance(e.get("content"), str)}
    tokens.update(v for k in ("prefix_token", "suffix_token", "middle_token") if isinstance(v := config.get(k), str))
    if "tokenizer.json" in _paths(model):
        added = _file_json(model, "tokenizer.json").get("added_tokens") or []
        tokens.update(e["content"] for e in added if isinstance(e, dict) and isinstance(e.get("content"), str))
    return tokens


def _go_template_variables(model: LocalModel) -> set[str] | None:
    """The variables a Go TEMPLATE layer given to `create` reads; None when there is none (or the
    template is a Jinja one): then the tokenizer's chat template renders."""
    template = str(model.manifest.get("template") or "")
    if not template or "{%" in template:
        return None
    return {v.lower() for v in re.findall(r"\.(\w+)", template)}


def _capabilities(model: LocalModel) -> list[str]:
    """Ollama's order: completion|embedding, tools, insert, vision, thinking."""
    if is_embedding(model):
        return ["embedding"]
    caps = ["completion"]
    template = _chat_template(model)
    go_vars = _go_template_variables(model)  # a Go template decides, as in Ollama
    if ("tools" in go_vars) if go_vars is not None else bool(re.search(r"\btools\b", template)):
        caps.append("tools")
    if ("suffix" in go_vars) if go_vars is not None else fim_tokens(_tokenizer_tokens(model)) is not None:
        caps.append("insert")
    # vision only where images reach the model: a vision tower, on an architecture vLLM runs multimodal
    if isinstance(model.config.get("vision_config"), dict) and runs_multimodal(model.config.get("architectures")):
        caps.append("vision")
    if _THINKING.search(template):
        caps.append("thinking")
    return caps


def _token_text(model: LocalModel, token_id: int) -> str | None:
    decoder = _file_json(model, "tokenizer_config.json").get("added_tokens_decoder") or {}
    entry = decoder.get(str(token_id))
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return entry["content"]
    return None


def stop_tokens(model: LocalModel) -> list[str]:
    """The end-of-turn tokens, as text: generation_config's eos ids, then tokenizer_config's eos."""
    eos = _file_json(model, "generation_config.json").get("eos_token_id", model.config.get("eos_token_id"))
    ids = eos if isinstance(eos, list) else [eos]
    stops = [t for t in (_token_text(model, i) for i in ids if isinstance(i, int)) if t]
    eos_token = _file_json(model, "tokenizer_config.json").get("eos_token")
    if isinstance(eos_token, dict):
        eos_token = eos_token.get("content")
    if isinstance(eos_token, str) and eos_token:
        stops.append(eos_token)
    return list(dict.fromkeys(stops))


def _default_parameters(model: LocalModel) -> dict[str, Any]:
    """Ollama options from generation_config.json, overridden by parameters given to `create`."""
    gen = _file_json(model, "generation_config.json")
    params: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                         ("min_p", "min_p"), ("repeat_penalty", "repetition_penalty")):
        value = gen.get(theirs)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            params[ours] = value
    stops = stop_tokens(model)
    if stops:
        params["stop"] = stops
    params.update(model.manifest.get("parameters") or {})
    return params


def _license_text(model: LocalModel) -> str:
    if model.manifest.get("license"):
        return str(model.manifest["license"])
    for path in sorted(_paths(model)):
        if re.fullmatch(r"LICEN[CS]E(\.\w+)?", path, re.IGNORECASE):
            return _file_text(model, path) or ""
    return ""




# -- once per manifest digest -----------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What every request (and /api/show) asks of a model, read from its files once."""

    chat_template: str
    capabilities: tuple[str, ...]
    parameters: dict[str, Any]
    license: str


_CACHE_SIZE = 64
_facts: OrderedDict[str, Facts] = OrderedDict()
_facts_lock = threading.Lock()


def facts(model: LocalModel) -> Facts:
    """The model's facts, cached by manifest digest: a digest names the files and the settings.
    Only a snapshot folder (files listed in the manifest) is immutable; anything else is read again."""
    if not model.files:
        return _read_facts(model)
    with _facts_lock:
        found = _facts.get(model.digest)
        if found is not None:
            _facts.move_to_end(model.digest)
            return found
    found = _read_facts(model)
    with _facts_lock:
        _facts[model.digest] = found
        while len(_facts) > _CACHE_SIZE:
            _facts.popitem(last=False)
    return found


def _read_facts(model: LocalModel) -> Facts:
    return Facts(_chat_template(model), tuple(_capabilities(model)), _default_parameters(model),
                 _license_text(model))


def chat_template(model: LocalModel) -> str:
    """The Jinja chat template: chat_template.jinja, chat_template.json or tokenizer_config.json."""
    return facts(model).chat_template


def capabilities(model: LocalModel) -> list[str]:
    """Ollama's order: completion|embedding, tools, insert, vision, thinking."""
    return list(facts(model).capabilities)


def default_parameters(model: LocalModel) -> dict[str, Any]:
    """Ollama options from generation_config.json, overridden by parameters given to `create`."""
    return dict(facts(model).parameters)


def license_text(model: LocalModel) -> str:
    return facts(model).license
