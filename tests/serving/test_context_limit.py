"""A model's own context, where a vision-language config (Idefics3, LLaVA, Gemma3) keeps it under
`text_config`: the cap on num_ctx, and what the engine is started with (the fake engine)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.serving.test_generate_engines import COMMON, Starts, prompt, run, serving
from vllama.models.info import trained_context
from vllama.serving.generate import wanted_context
from vllama.serving.requests import GenerateRequest

VLM_CONFIG = {"architectures": ["Idefics3ForConditionalGeneration"], "model_type": "idefics3",
              "text_config": {"model_type": "llama", "max_position_embeddings": 2048},
              "vision_config": {"image_size": 32}}


@pytest.mark.parametrize("config, limit", [
    ({"max_position_embeddings": 8192}, 8192),
    (VLM_CONFIG, 2048),
    ({**VLM_CONFIG, "max_position_embeddings": 4096}, 2048),  # the language model's, where both are there
    ({"text_config": {"hidden_size": 64}, "max_position_embeddings": 4096}, 4096),
    ({"model_type": "llama"}, None),
    ({"max_position_embeddings": True}, None),
    ({"text_config": {"max_position_embeddings": "2048"}}, None),
])
def test_the_trained_context_is_the_language_models(config, limit):
    assert trained_context(config) == limit


def test_num_ctx_is_capped_at_a_nested_context():
    model = SimpleNamespace(config=VLM_CONFIG, parameters={})
    ask = GenerateRequest(**{"model": "vlm", **COMMON, "options": {"num_ctx": 8192}}, prompt="hi")
    assert wanted_context(ask, model) == 2048
    ask.options = {"num_ctx": 1024}
    assert wanted_context(ask, model) == 1024


def test_a_vision_model_loads_with_its_nested_context_past_a_larger_num_ctx():
    starts = Starts()
    ctx = serving(starts, ["vlm:latest"], config=VLM_CONFIG)
    loaded = run(ctx, prompt("vlm", options={"num_ctx": 100000}))
    assert starts.calls == [("vlm:latest", 2048)]
    assert loaded[0].runner.context_length == 2048
