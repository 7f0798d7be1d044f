"""A model's facts (vllama.models.info) as Ollama shows them: /api/tags entries, /api/show with its
GGUF-style `model_info`, the parameters text and the generated Modelfile."""

from __future__ import annotations

from typing import Any

from ...models import gguf, info
from ...models.store import LocalModel
from ...serving.modelfile_prompt import is_go_template
from ..gojson import go_number, go_quote, omit_empty, rfc3339

_FILE_TYPE = {"F32": 0, "F16": 1, "Q8_0": 7, "BF16": 32}  # GGUF general.file_type numbers


def tags_entry(model: LocalModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": rfc3339(model.modified_at),
        "size": model.size,
        "digest": model.digest,
        "details": model.details,
    }


def model_info(model: LocalModel) -> dict[str, Any]:
    """Hugging Face config numbers under the GGUF keys Ollama shows, sorted."""
    if model.gguf_header is not None:  # a GGUF-born model: its own header, as Ollama prints it
        return gguf.show_model_info(model.gguf_header)
    config = model.config
    text = info.text_config(config)
    arch = info.architecture(config)
    weights = [model.path / f["path"] for f in model.files if f["path"].endswith(".safetensors")]
    count, dtype = info.weights_summary(weights)
    out: dict[str, Any] = {"general.architecture": arch, "general.basename": model.model_name.model}
    if dtype in _FILE_TYPE and not config.get("quantization_config"):
        out["general.file_type"] = _FILE_TYPE[dtype]
    repo = model.manifest.get("repo")
    if isinstance(repo, str) and "/" in repo:
        out["general.organization"] = repo.split("/")[0]
    out["general.parameter_count"] = count
    out["general.type"] = "model"
    # A folder dequantised from a GGUF (the embedded model, a `create` from a GGUF): that GGUF's own
    # general.* keys (basename, size_label, finetune, license, languages, quantization_version, ...)
    out.update(gguf.source_general(model.path))

    def first(*keys: str) -> Any:
        return next((text[k] for k in keys if isinstance(text.get(k), (int, float))), None)

    heads = first("num_attention_heads", "n_head")
    hidden = first("hidden_size", "n_embd", "d_model")
    rope: dict[str, Any] = text["rope_parameters"] if isinstance(text.get("rope_parameters"), dict) else {}
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
    out.update({f"{arch}.{k}": go_number(v) for k, v in fields.items() if v is not None})
    for ours, theirs in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"),
                         ("padding_token_id", "pad_token_id")):
        value = text.get(theirs)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, int) and not isinstance(value, bool):
            out[f"tokenizer.ggml.{ours}"] = value
    return dict(sorted(out.items()))


def tensors(model: LocalModel) -> list[dict[str, Any]]:
    if model.gguf_header is not None:
        return gguf.show_tensors(model.gguf_header)
    out = []
    for f in model.files:
        if f["path"].endswith(".safetensors"):
            for name, t in info.safetensors_header(model.path / f["path"]).items():
                out.append({"name": name, "type": t["dtype"], "shape": t["shape"]})
    return out


def go_value(value: Any) -> str:
    """Go's %#v for option values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    return str(go_number(value))


def parameters_text(params: dict[str, Any]) -> str:
    """`key` padded to 30 columns, a space, the Go value; list values repeat the key."""
    lines: list[str] = []
    for key in sorted(params):
        values = params[key] if isinstance(params[key], list) else [params[key]]
        lines.extend(f"{key:<30} {go_value(v)}" for v in values)
    return "\n".join(lines)


def _modelfile_quote(s: str) -> str:
    """Ollama's parser.quote: quote only values with newlines or edge spaces."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def _template(model: LocalModel) -> str:
    return str(model.manifest.get("template") or info.chat_template(model))


def modelfile(model: LocalModel) -> str:
    lines = [
        '# Modelfile generated by "vllama show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {model.name}",
        "",
        # A GGUF-born model names its GGUF (absolute, as `ollama create` takes it); any other by its
        # name: a snapshot folder is vllama's own layout, which no `create` uploads.
        f"FROM {model.gguf.resolve() if model.gguf else model.name}",
    ]
    template = str(model.manifest.get("template") or "")
    if template and is_go_template(template):  # a Go TEMPLATE layer; the tokenizer's own template stays in its files
        lines.append(f"TEMPLATE {_modelfile_quote(template)}")
    if model.manifest.get("system"):
        lines.append(f"SYSTEM {_modelfile_quote(str(model.manifest['system']))}")
    for key in sorted(model.parameters):
        values = model.parameters[key] if isinstance(model.parameters[key], list) else [model.parameters[key]]
        lines.extend(f"PARAMETER {key} {_modelfile_quote(str(go_number(v)))}" for v in values)
    license = info.license_text(model)
    if license:
        lines.append(f"LICENSE {_modelfile_quote(license)}")
    for message in model.manifest.get("messages") or []:
        lines.append(f"MESSAGE {message.get('role', '')} {_modelfile_quote(str(message.get('content', '')))}")
    return "\n".join(lines) + "\n"


def show_response(model: LocalModel) -> dict[str, Any]:
    """The /api/show object, keys in Ollama's order; empty optional fields are left out."""
    return {
        **omit_empty({"license": info.license_text(model)}),
        "modelfile": modelfile(model),
        **omit_empty({"parameters": parameters_text(model.parameters), "template": _template(model),
                      "system": str(model.manifest.get("system") or "")}),
        "details": model.details,
        "model_info": model_info(model),
        **omit_empty({"messages": model.manifest.get("messages") or None}),
        "tensors": tensors(model),
        "capabilities": model.capabilities,
        "modified_at": rfc3339(model.modified_at),
    }
