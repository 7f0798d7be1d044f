"""What Ollama's /api/tags and /api/show say about a model, built from a Hugging Face folder.

Ollama reads these facts from GGUF metadata; here they come from config.json,
generation_config.json, the tokenizer config and the safetensors headers (only the JSON header of
each file is read, never the weights).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.streaming import rfc3339

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
_FILE_TYPE = {"F32": 0, "F16": 1, "Q8_0": 7, "BF16": 32}  # GGUF general.file_type numbers
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


def chat_template(model: LocalModel) -> str:
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


def is_embedding(model: LocalModel) -> bool:
    if "modules.json" in _paths(model):  # a sentence-transformers model
        return True
    archs = [str(a) for a in model.config.get("architectures") or []]
    if any(a.endswith(("ForCausalLM", "ForConditionalGeneration", "LMHeadModel")) for a in archs):
        return False
    return str(model.config.get("model_type")) in _ENCODERS


def capabilities(model: LocalModel) -> list[str]:
    """Ollama's order: completion|embedding, tools, insert, vision, thinking."""
    if is_embedding(model):
        return ["embedding"]
    caps = ["completion"]
    template = chat_template(model)
    if re.search(r"\btools\b", template):
        caps.append("tools")
    if isinstance(model.config.get("vision_config"), dict):
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


def default_parameters(model: LocalModel) -> dict[str, Any]:
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


def license_text(model: LocalModel) -> str:
    if model.manifest.get("license"):
        return str(model.manifest["license"])
    for path in sorted(_paths(model)):
        if re.fullmatch(r"LICEN[CS]E(\.\w+)?", path, re.IGNORECASE):
            return _file_text(model, path) or ""
    return ""


# -- /api/tags and /api/show ------------------------------------------------------------------

def tags_entry(model: LocalModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": rfc3339(model.modified_at),
        "size": model.size,
        "digest": model.digest,
        "details": model.details,
    }


def _number(value: Any) -> Any:
    """Go prints whole floats without a fraction (100000, not 100000.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def model_info(model: LocalModel) -> dict[str, Any]:
    config = model.config
    text = text_config(config)
    arch = architecture(config)
    weights = [model.path / f["path"] for f in model.files if f["path"].endswith(".safetensors")]
    count, dtype = weights_summary(weights)
    info: dict[str, Any] = {"general.architecture": arch, "general.basename": model.model_name.model}
    if dtype in _FILE_TYPE and not config.get("quantization_config"):
        info["general.file_type"] = _FILE_TYPE[dtype]
    repo = model.manifest.get("repo")
    if isinstance(repo, str) and "/" in repo:
        info["general.organization"] = repo.split("/")[0]
    info["general.parameter_count"] = count
    info["general.type"] = "model"

    def first(*keys: str) -> Any:
        return next((text[k] for k in keys if isinstance(text.get(k), (int, float))), None)

    heads = first("num_attention_heads", "n_head")
    hidden = first("hidden_size", "n_embd", "d_model")
    rope = text.get("rope_parameters") if isinstance(text.get("rope_parameters"), dict) else {}
    head_dim = first("head_dim") or (hidden // heads if hidden and heads else None)
    fields = {
        "attention.head_count": heads,
        "attention.head_count_kv": first("num_key_value_heads", "n_head_kv") or heads,
        "attention.layer_norm_rms_epsilon": first("rms_norm_eps"),
        "attention.layer_norm_epsilon": first("layer_norm_eps", "layer_norm_epsilon"),
        "attention.sliding_window": first("sliding_window"),
        "block_count": first("num_hidden_layers", "n_layer", "num_layers"),
        "context_length": first("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"),
        "embedding_length": hidden,
        "expert_count": first("num_local_experts", "num_experts"),
        "expert_used_count": first("num_experts_per_tok"),
        "feed_forward_length": first("intermediate_size", "n_inner"),
        "rope.dimension_count": head_dim if "rope_theta" in text or rope else None,
        "rope.freq_base": first("rope_theta") or rope.get("rope_theta"),
        "vocab_size": first("vocab_size"),
    }
    info.update({f"{arch}.{k}": _number(v) for k, v in fields.items() if v is not None})
    for ours, theirs in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"),
                         ("padding_token_id", "pad_token_id")):
        value = text.get(theirs)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, int) and not isinstance(value, bool):
            info[f"tokenizer.ggml.{ours}"] = value
    return dict(sorted(info.items()))


def tensors(model: LocalModel) -> list[dict[str, Any]]:
    out = []
    for f in model.files:
        if f["path"].endswith(".safetensors"):
            for name, t in safetensors_header(model.path / f["path"]).items():
                out.append({"name": name, "type": t["dtype"], "shape": t["shape"]})
    return out


def go_quote(value: str) -> str:
    """Go's strconv.Quote for the characters that occur in practice."""
    return json.dumps(value, ensure_ascii=False)


def go_value(value: Any) -> str:
    """Go's %#v for option values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    return str(_number(value))


def parameters_text(params: dict[str, Any]) -> str:
    """`key` padded to 30 columns, a space, the Go value; list values repeat the key."""
    lines = []
    for key in sorted(params):
        values = params[key] if isinstance(params[key], list) else [params[key]]
        lines.extend(f"{key:<30} {go_value(v)}" for v in values)
    return "\n".join(lines)


def _modelfile_quote(s: str) -> str:
    """Ollama's parser.quote: quote only values with newlines or edge spaces."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def modelfile(model: LocalModel) -> str:
    lines = [
        '# Modelfile generated by "vllama show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {model.name}",
        "",
        f"FROM {model.path}",
    ]
    template = model.manifest.get("template") or chat_template(model)
    if template:
        lines.append(f"TEMPLATE {_modelfile_quote(template)}")
    if model.manifest.get("system"):
        lines.append(f"SYSTEM {_modelfile_quote(str(model.manifest['system']))}")
    for key in sorted(model.parameters):
        values = model.parameters[key] if isinstance(model.parameters[key], list) else [model.parameters[key]]
        lines.extend(f"PARAMETER {key} {_modelfile_quote(str(_number(v)))}" for v in values)
    license = license_text(model)
    if license:
        lines.append(f"LICENSE {_modelfile_quote(license)}")
    for message in model.manifest.get("messages") or []:
        lines.append(f"MESSAGE {message.get('role', '')} {_modelfile_quote(str(message.get('content', '')))}")
    return "\n".join(lines) + "\n"


def show_response(model: LocalModel) -> dict[str, Any]:
    """The /api/show object, keys in Ollama's order; empty optional strings are left out."""
    response: dict[str, Any] = {}
    license = license_text(model)
    if license:
        response["license"] = license
    response["modelfile"] = modelfile(model)
    params = parameters_text(model.parameters)
    if params:
        response["parameters"] = params
    template = model.manifest.get("template") or chat_template(model)
    if template:
        response["template"] = template
    if model.manifest.get("system"):
        response["system"] = str(model.manifest["system"])
    response["details"] = model.details
    response["model_info"] = model_info(model)
    if model.manifest.get("messages"):
        response["messages"] = model.manifest["messages"]
    response["tensors"] = tensors(model)
    response["capabilities"] = model.capabilities
    response["modified_at"] = rfc3339(model.modified_at)
    return response
