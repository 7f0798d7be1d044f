"""Ollama names -> Hugging Face repos: the built-in catalogue, direct Hub names, user overrides."""

from __future__ import annotations

import json
import logging

import pytest

from vllama.models import catalog
from vllama.models.catalog import resolve


@pytest.mark.parametrize("name,repo", [
    ("qwen2.5", "Qwen/Qwen2.5-7B-Instruct"),
    ("qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct"),
    ("Qwen2.5:72B", "Qwen/Qwen2.5-72B-Instruct"),
    ("qwen2.5-coder:1.5b", "Qwen/Qwen2.5-Coder-1.5B-Instruct"),
    ("qwen3", "Qwen/Qwen3-8B"),
    ("qwen3:0.6b", "Qwen/Qwen3-0.6B"),
    ("llama3.2", "meta-llama/Llama-3.2-3B-Instruct"),
    ("llama3.2:1b", "meta-llama/Llama-3.2-1B-Instruct"),
    ("llama3.1", "meta-llama/Llama-3.1-8B-Instruct"),
    ("gemma3", "google/gemma-3-4b-it"),
    ("gemma3:27b", "google/gemma-3-27b-it"),
    ("phi3", "microsoft/Phi-3-mini-4k-instruct"),
    ("phi3:3.8b", "microsoft/Phi-3-mini-4k-instruct"),
    ("phi4", "microsoft/phi-4"),
    ("mistral", "mistralai/Mistral-7B-Instruct-v0.3"),
    ("smollm2", "HuggingFaceTB/SmolLM2-1.7B-Instruct"),
    ("smollm2:135m", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("deepseek-r1:1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
    ("deepseek-r1:70b", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B"),
    ("all-minilm", "sentence-transformers/all-MiniLM-L6-v2"),
    ("nomic-embed-text", "nomic-ai/nomic-embed-text-v1.5"),
    ("mxbai-embed-large", "mixedbread-ai/mxbai-embed-large-v1"),
    ("registry.ollama.ai/library/qwen2.5:3b", "Qwen/Qwen2.5-3B-Instruct"),
])
def test_library_names(name, repo):
    assert resolve(name) == (repo, None)


@pytest.mark.parametrize("name,expected", [
    ("hf.co/Org/Repo", ("Org/Repo", None)),
    ("hf.co/Org/Repo:main", ("Org/Repo", "main")),
    ("huggingface.co/Org/Repo:v1.0", ("Org/Repo", "v1.0")),
    ("Org/Repo", ("Org/Repo", None)),
    ("Org/Repo:0123abc", ("Org/Repo", "0123abc")),
])
def test_hub_names_go_straight_to_the_hub(name, expected):
    assert resolve(name) == expected


@pytest.mark.parametrize("name", ["no-such-model", "qwen2.5:999b", "example.com/library/qwen2.5", "example.com/a/b"])
def test_unknown_names(name):
    assert resolve(name) is None


def test_every_builtin_entry_resolves_to_a_repo(user_catalog):
    user_catalog.unlink()
    for model, tags in catalog.load_catalog().items():
        assert "latest" in tags, model
        for tag in tags:
            found = resolve(f"{model}:{tag}")
            assert found is not None and found[0].count("/") == 1, (model, tag)


def test_user_file_adds_overrides_and_removes(user_catalog):
    user_catalog.write_text(json.dumps({"models": {
        "mine": {"small": "me/Small", "pinned": {"repo": "me/Pinned", "revision": "abc123"}, "latest": "small"},
        "qwen2.5": {"7b": "me/Qwen-Fork", "0.5b": None},
    }}))
    assert resolve("mine") == ("me/Small", None)
    assert resolve("mine:pinned") == ("me/Pinned", "abc123")
    assert resolve("qwen2.5") == ("me/Qwen-Fork", None)  # latest -> 7b -> the override
    assert resolve("qwen2.5:0.5b") is None
    assert resolve("qwen2.5:1.5b") == ("Qwen/Qwen2.5-1.5B-Instruct", None)


def test_user_file_without_models_wrapper(user_catalog):
    user_catalog.write_text(json.dumps({"x": {"latest": "a/b"}}))
    assert resolve("x") == ("a/b", None)


def test_broken_user_file_is_ignored(user_catalog, caplog):
    user_catalog.write_text("{not json")
    with caplog.at_level(logging.WARNING, "vllama.models"):
        assert resolve("qwen2.5:0.5b") == ("Qwen/Qwen2.5-0.5B-Instruct", None)
    assert "ignoring model catalog" in caplog.text


def test_alias_loops_end(user_catalog):
    user_catalog.write_text(json.dumps({"loop": {"a": "b", "b": "a", "latest": "a"}}))
    assert resolve("loop") is None
