"""The catalogue's sizes like Ollama's: a well-formed file, 4-bit defaults on a GPU, what runs on the CPU."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.models.conftest import REPO
from tests.models.fake_repo import write_tiny_model
from vllama.models import catalog
from vllama.models.catalog import BUILTIN, resolve
from vllama.models.pull import pull

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
SIZE = re.compile(r"^(\d+(\.\d+)?)GB$")
KEYS = {"repo", "revision", "cpu", "size", "unverified"}
# Names whose kernels vLLM has on GPUs only (AWQ/GPTQ/W4A16 Marlin, FP8).
GPU_ONLY = re.compile(r"awq|gptq|w4a16|w8a16|fp8|int4", re.IGNORECASE)
# Ollama's library pages: its default tag's size, in GB.
OLLAMA_DEFAULTS = {"llama3.1:8b": 4.9, "qwen2.5:7b": 4.7, "gemma3:4b": 3.3, "mistral:7b": 4.1, "phi4:14b": 9.1}


def _no_duplicates(pairs):
    keys = [key.lower() for key, _ in pairs]
    duplicated = {key for key in keys if keys.count(key) > 1}
    assert not duplicated, f"duplicate keys {duplicated}"
    return dict(pairs)


@pytest.fixture(scope="module")
def models() -> dict:
    return json.loads(BUILTIN.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)["models"]


def test_the_file_is_well_formed(models):
    for model, tags in models.items():
        assert model == model.lower() and tags.get("latest"), model
        for tag, entry in tags.items():
            where = f"{model}:{tag}"
            if isinstance(entry, str):  # an alias names a tag here; a bare repo would carry no size
                assert entry in tags and entry != tag, where
                continue
            assert isinstance(entry, dict) and set(entry) <= KEYS, where
            assert REPO_ID.match(entry["repo"]), where
            assert SIZE.match(entry["size"]), where
            cpu = entry.get("cpu", "")
            assert cpu is None or cpu == "" or cpu in tags or REPO_ID.match(cpu), where
            assert entry.get("unverified", True) is True, where


def test_forty_families_of_every_kind(models):
    assert len(models) >= 40
    for family in ("llama3.1", "llama3.2", "qwen2.5", "qwen3", "qwen2.5-coder", "gemma2", "gemma3", "mistral",
                   "mistral-nemo", "mixtral", "phi3", "phi4", "deepseek-r1", "deepseek-coder", "deepseek-coder-v2",
                   "codellama", "starcoder2", "llava", "llama3.2-vision", "minicpm-v", "nomic-embed-text",
                   "mxbai-embed-large", "all-minilm", "bge-m3", "snowflake-arctic-embed", "granite3.3", "olmo2",
                   "smollm2", "tinyllama", "command-r", "qwq"):
        assert family in models, family


def test_every_tag_resolves_on_both_platforms(models):
    for model, tags in models.items():
        for tag in tags:
            for gpu in (True, False):
                found = resolve(f"{model}:{tag}", gpu=gpu)
                assert found is not None and REPO_ID.match(found[0]), (model, tag, gpu)


def test_the_cpu_never_gets_gpu_only_kernels(models):
    for model, tags in models.items():
        for tag in tags:
            repo, _ = resolve(f"{model}:{tag}", gpu=False)
            assert not GPU_ONLY.search(repo), (model, tag, repo)


@pytest.mark.parametrize("name,ollama_gb", OLLAMA_DEFAULTS.items())
def test_defaults_are_about_ollamas_size_on_a_gpu(models, name, ollama_gb):
    model, tag = name.split(":")
    entry = models[model][tag]
    assert resolve(model, gpu=True)[0] == entry["repo"]  # the default tag is this one
    assert GPU_ONLY.search(entry["repo"])
    size = float(SIZE.match(entry["size"]).group(1))
    assert ollama_gb * 0.7 <= size <= ollama_gb * 1.3, (name, size, ollama_gb)


@pytest.mark.parametrize("name,gpu,repo", [
    ("llama3.1", True, "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"),
    ("llama3.1", False, "meta-llama/Llama-3.1-8B-Instruct"),
    ("llama3.1:8b-instruct-fp16", True, "meta-llama/Llama-3.1-8B-Instruct"),
    ("qwen2.5:7b", True, "Qwen/Qwen2.5-7B-Instruct-AWQ"),
    ("qwen2.5:7b", False, "Qwen/Qwen2.5-7B-Instruct"),
    ("qwen2.5:7b-instruct-q8_0", True, "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8"),
    ("qwen2.5:7b-instruct-q8_0", False, "Qwen/Qwen2.5-7B-Instruct"),
    ("qwen3:30b", True, "Qwen/Qwen3-30B-A3B-GPTQ-Int4"),
    ("qwen3:30b-a3b", False, "Qwen/Qwen3-30B-A3B"),
    ("qwen2.5-coder:32b", True, "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"),
    ("qwq", True, "Qwen/QwQ-32B-AWQ"),
    ("smollm2:135m", True, "HuggingFaceTB/SmolLM2-135M-Instruct"),  # no 4-bit repo: the same on both
])
def test_resolution_picks_by_platform(name, gpu, repo):
    assert resolve(name, gpu=gpu) == (repo, None)


def test_the_platform_is_this_ones_by_default(monkeypatch):
    monkeypatch.setattr(catalog, "on_gpu", lambda: True)
    assert resolve("qwen2.5") == ("Qwen/Qwen2.5-7B-Instruct-AWQ", None)
    monkeypatch.setattr(catalog, "on_gpu", lambda: False)
    assert resolve("qwen2.5") == ("Qwen/Qwen2.5-7B-Instruct", None)


def test_a_user_entry_can_send_the_cpu_to_ollamas_registry(user_catalog):
    user_catalog.write_text(json.dumps({"models": {"mine": {
        "7b": {"repo": "me/Mine-AWQ", "cpu": None, "size": "4.5GB"}, "latest": "7b"}}}))
    assert resolve("mine", gpu=True) == ("me/Mine-AWQ", None)
    assert resolve("mine", gpu=False) is None  # not the Hub's: pull goes to Ollama's registry


@pytest.mark.parametrize("gpu,served", [(True, "acme/Tiny-AWQ"), (False, REPO)])
def test_pull_fetches_the_platforms_repo(monkeypatch, user_catalog, store, hub, tmp_path, gpu, served):
    hub.add_folder("acme/Tiny-AWQ", write_tiny_model(tmp_path / "awq", rows=64))
    user_catalog.write_text(json.dumps({"models": {"tiny": {
        "1x": {"repo": "acme/Tiny-AWQ", "cpu": "1x-fp16", "size": "0.01GB"},
        "1x-fp16": {"repo": REPO, "size": "0.01GB"}, "latest": "1x"}}}))
    monkeypatch.setattr(catalog, "on_gpu", lambda: gpu)

    async def go() -> list[dict]:
        return [event async for event in pull(store, "tiny")]

    assert asyncio.run(go())[-1] == {"status": "success"}
    listed = {path.removeprefix("/api/models/").split("/revision/")[0] for _, path, _ in hub.requests
              if path.startswith("/api/models/")}
    assert listed == {served}
