"""The facts vllama.models.info reads from a Hugging Face folder (their Ollama rendering is tested
in tests/api/ollama/test_show.py)."""

from __future__ import annotations

import pytest

from tests.models.fake_repo import CONFIG, TOOLS_AND_THINKING, write_tiny_model
from vllama.models import info

@pytest.mark.parametrize("n,text", [
    (134515008, "134.52M"), (8030261248, "8.0B"), (7_000_000_000, "7B"), (22_700_000, "22.70M"),
    (335_000_000, "335M"), (1_543_714_304, "1.5B"), (70_553_706_496, "70.6B"), (64_128, "64K"), (999, "999"),
])
def test_human_number_matches_ollama(n, text):
    assert info.human_number(n) == text


@pytest.mark.parametrize("config,arch", [
    ({"model_type": "llama"}, "llama"), ({"model_type": "mistral"}, "llama"), ({"model_type": "qwen2"}, "qwen2"),
    ({"model_type": "qwen3_moe"}, "qwen3moe"), ({"model_type": "gemma3_text"}, "gemma3"),
    ({"model_type": "phi3"}, "phi3"), ({"model_type": "nomic_bert"}, "nomic-bert"),
    ({"model_type": "brand_new"}, "brandnew"), ({"architectures": ["FooForCausalLM"]}, "foo"),
])
def test_architecture_names(config, arch):
    assert info.architecture(config) == arch


@pytest.mark.parametrize("template,config,extra,caps", [
    (TOOLS_AND_THINKING, {}, {}, ["completion", "tools", "thinking"]),
    ("{{ messages }}", {"vision_config": {"hidden_size": 8}, "architectures": ["LlavaForConditionalGeneration"]}, {},
     ["completion", "vision"]),
    # a vision tower on an architecture vLLM runs text-only: images would never reach it
    ("{{ messages }}", {"vision_config": {"hidden_size": 8}, "architectures": ["LlamaForCausalLM"]}, {},
     ["completion"]),
    ("{{ messages }}", {}, {"modules.json": b"[]"}, ["embedding"]),
    ("", {"architectures": ["BertModel"], "model_type": "bert"}, {}, ["embedding"]),
    ("{% if enable_thinking %}{% endif %}", {}, {}, ["completion", "thinking"]),
])
def test_capabilities(store, tmp_path, template, config, extra, caps):
    folder = write_tiny_model(tmp_path / "m", chat_template=template, config={**CONFIG, **config}, extra=extra)
    assert store.create_from_folder("m", folder).capabilities == caps


def test_chat_template_sources(store, tmp_path):
    folder = write_tiny_model(tmp_path / "m", chat_template="", extra={"chat_template.jinja": b"JINJA"})
    assert info.chat_template(store.create_from_folder("m", folder)) == "JINJA"
    named = [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
    folder = write_tiny_model(tmp_path / "n", chat_template=named)  # type: ignore[arg-type]
    assert info.chat_template(store.create_from_folder("n", folder)) == "D"


@pytest.mark.parametrize("config,dtype,level", [
    ({}, "BF16", "BF16"), ({}, "F16", "F16"), ({}, "F8_E4M3", "FP8"), ({}, None, "unknown"),
    ({"quantization_config": {"quant_method": "awq", "bits": 4}}, "I32", "AWQ_Q4"),
])
def test_quantization_level(config, dtype, level):
    assert info.quantization_level(config, dtype) == level
