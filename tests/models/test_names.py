"""Ollama model names: grammar, defaults, display form, case-insensitivity, and path safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from vllama.models.names import InvalidName, ModelName, is_valid_name

VALID = [
    # text, (host, namespace, model, tag), display
    ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest"), "llama3.2:latest"),
    ("llama3.2:1b", ("registry.ollama.ai", "library", "llama3.2", "1b"), "llama3.2:1b"),
    ("user/m:q4", ("registry.ollama.ai", "user", "m", "q4"), "user/m:q4"),
    ("localhost:5000/ns/m:t", ("localhost:5000", "ns", "m", "t"), "localhost:5000/ns/m:t"),
    ("localhost:5000/ns/m", ("localhost:5000", "ns", "m", "latest"), "localhost:5000/ns/m:latest"),
    ("registry.ollama.ai/library/x:latest", ("registry.ollama.ai", "library", "x", "latest"), "x:latest"),
    ("REGISTRY.OLLAMA.AI/Library/X", ("REGISTRY.OLLAMA.AI", "Library", "X", "latest"), "X:latest"),
    ("example.com/library/x", ("example.com", "library", "x", "latest"), "example.com/library/x:latest"),
    ("hf.co/Qwen/Qwen2.5-0.5B-Instruct", ("hf.co", "Qwen", "Qwen2.5-0.5B-Instruct", "latest"),
     "hf.co/Qwen/Qwen2.5-0.5B-Instruct:latest"),
    ("hf.co/HuggingFaceTB/SmolLM2-135M-Instruct:main", ("hf.co", "HuggingFaceTB", "SmolLM2-135M-Instruct", "main"),
     "hf.co/HuggingFaceTB/SmolLM2-135M-Instruct:main"),
    ("Org/Repo", ("registry.ollama.ai", "Org", "Repo", "latest"), "Org/Repo:latest"),
    ("https://hf.co/a/b:c", ("hf.co", "a", "b", "c"), "hf.co/a/b:c"),
    ("http://h/a/b", ("h", "a", "b", "latest"), "h/a/b:latest"),
    ("  qwen2.5:7b \n", ("registry.ollama.ai", "library", "qwen2.5", "7b"), "qwen2.5:7b"),
    ("_x:_1.2-3", ("registry.ollama.ai", "library", "_x", "_1.2-3"), "_x:_1.2-3"),
    ("m" * 80 + ":" + "t" * 80, ("registry.ollama.ai", "library", "m" * 80, "t" * 80), "m" * 80 + ":" + "t" * 80),
    ("h" * 350 + "/n/m", ("h" * 350, "n", "m", "latest"), "h" * 350 + "/n/m:latest"),
    ("a..b", ("registry.ollama.ai", "library", "a..b", "latest"), "a..b:latest"),
]

INVALID = [
    "", "   ", "m:", ":t", "-m", ".m", "m:-t", "m:.t", "..", "../x", "x/../y", "./x", "/abs", "/abs/x:y",
    "a/b/c/d", "a//b", "h/name:space/m:t", "m with space", "m@sha256:abc", "m:t@x", "a\0b", "x:..",
    "ns.dot/m", "x:t:u", "m" * 81, "m:" + "t" * 81, "n" * 81 + "/m", "h" * 351 + "/n/m", "é", "m\n:x",
    "..\\x", "C:\\x", "~/x", "x/", "/", ":",
]


@pytest.mark.parametrize("text,parts,display", VALID)
def test_valid_names(text, parts, display):
    name = ModelName.parse(text)
    assert name.parts == parts
    assert name.display == display
    assert str(name) == "{}/{}/{}:{}".format(*parts)
    assert is_valid_name(text)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_names(text):
    with pytest.raises(InvalidName):
        ModelName.parse(text)
    assert not is_valid_name(text)


@pytest.mark.parametrize("a,b", [
    ("LLaMA3.2", "llama3.2:latest"),
    ("x", "library/x:latest"),
    ("x", "registry.ollama.ai/library/x"),
    ("Qwen2.5:7B", "qwen2.5:7b"),
    ("HF.co/Org/Repo", "hf.co/org/repo:LATEST"),
])
def test_equal_ignoring_case_with_defaults(a, b):
    x, y = ModelName.parse(a), ModelName.parse(b)
    assert x == y and hash(x) == hash(y) and x.key == y.key == str(y).lower()
    assert len({x, y}) == 1


def test_different_names_differ():
    assert ModelName.parse("x:1b") != ModelName.parse("x:3b")
    assert ModelName.parse("a/x") != ModelName.parse("x")
    assert ModelName.parse("x") != "x"


def test_value_type_is_frozen_and_validates():
    name = ModelName("m", "t")
    with pytest.raises(AttributeError):
        name.tag = "other"  # type: ignore[misc]
    with pytest.raises(InvalidName):
        ModelName("..")
    with pytest.raises(InvalidName):
        ModelName("m", namespace="a/b")


def test_huggingface_hosts():
    assert ModelName.parse("hf.co/a/b").is_huggingface
    assert ModelName.parse("huggingface.co/a/b").is_huggingface
    assert not ModelName.parse("a/b").is_huggingface


@given(st.lists(st.sampled_from(["a", "B", "1", ".", "..", "/", "../", "\\", ":", "-", "_", "~", "@", " ", "\0", "%"]),
                max_size=16).map("".join))
def test_no_name_escapes_the_store(text):
    """Whatever parses stays a plain relative path of four parts under the store root."""
    try:
        name = ModelName.parse(text)
    except InvalidName:
        return
    root = Path("/store/manifests")
    for part in name.parts:
        assert part not in ("", ".", "..") and "/" not in part and "\\" not in part and "\0" not in part
    assert root.joinpath(*name.parts).resolve().parent.parent.parent.parent == root
