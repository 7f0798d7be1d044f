"""The embedded SmolLM2: its GGUF, dequantized by vllama.models.gguf, is a faithful HF folder."""

from __future__ import annotations

import json

import pytest

from tests.fixtures import smollm2_dir

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

QUESTION = "What is the capital of France?"
# The ChatML prompt SmolLM2's own template makes, and its token ids under SmolLM2's tokenizer.
PROMPT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
)
PROMPT_IDS = [
    1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712,
    8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198,
]  # fmt: skip


@pytest.fixture(scope="module")
def folder():
    return smollm2_dir()


def read(folder, name):
    return json.loads((folder / name).read_text())


def test_config_is_smollm2_135m_unquantized(folder):
    config = read(folder, "config.json")
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"
    shape = {k: config[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")}
    assert shape == {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "vocab_size": 49152}
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (9, 3, 64)
    assert config["max_position_embeddings"] == 8192
    assert config["rope_parameters"]["rope_theta"] == 100000.0
    assert config["tie_word_embeddings"] is True
    assert "quantization_config" not in config
    assert (config["bos_token_id"], config["eos_token_id"]) == (1, 2)


def test_generation_config_stops_at_im_end(folder):
    generation = read(folder, "generation_config.json")
    assert generation["eos_token_id"] == 2  # <|im_end|>
    assert generation["bos_token_id"] == 1


def test_weights_are_dense_float32(folder):
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    assert [f.name for f in files] == ["model.safetensors"]
    with safe_open(files[0], framework="pt") as f:
        names = set(f.keys())
        embed = f.get_slice("model.embed_tokens.weight")
        assert embed.get_dtype() == "F32"
        assert embed.get_shape() == [49152, 576]
    assert len(names) == 1 + 30 * 9 + 1  # embeddings, 9 per layer, final norm; lm_head is tied
    assert "model.layers.29.mlp.down_proj.weight" in names


def test_tokenizer_and_chat_template(folder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 2)
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>"]) == [0, 1]
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == PROMPT
    assert tokenizer(prompt).input_ids == PROMPT_IDS  # no BOS added, special tokens whole
    text = "héllo  wörld\n\n  x = 3.14"
    assert tokenizer.decode(tokenizer(text).input_ids) == text


def test_tokenizer_config_is_portable(folder):
    config = read(folder, "tokenizer_config.json")
    assert config["chat_template"] == (folder / "chat_template.jinja").read_text()
    assert config["model_max_length"] == 8192
    assert "is_local" not in config and "local_files_only" not in config


def test_source_describes_the_gguf(folder):
    source = read(folder, "vllama_source.json")
    assert source["format"] == "gguf"
    assert source["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert source["file_type"] == "Q4_1"
    assert source["dtype"] == "float32"


def test_prepare_is_idempotent_and_fast(folder):
    """A second prepare finds the folder and rebuilds nothing (no file is rewritten); timed, on a
    loaded machine, it proved nothing (a timing assertion failed there)."""
    from vllama.models.embedded import prepare_smollm2

    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert prepare_smollm2(folder.parent) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_no_partial_folders_left(folder):
    assert not [p.name for p in folder.parent.iterdir() if p.name.endswith(".partial")]


@pytest.mark.engine
def test_vllm_answers_paris(folder, monkeypatch):
    from tests.fixtures import vllm_greedy

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    [out] = vllm_greedy(folder, [PROMPT], max_tokens=32)
    assert out["text"] == "The capital of France is Paris."
    assert out["finish_reason"] == "stop"
