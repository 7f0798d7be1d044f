"""Option typing for `/set parameter` and PARAMETER, and the Modelfile reader behind `create -f`."""

from __future__ import annotations

import pytest

from vllama.cli.modelfile import ParameterError, parse_modelfile, parse_parameter


def test_parameters_are_typed_like_ollama():
    assert parse_parameter("num_predict", ["5"]) == 5
    assert parse_parameter("temperature", ["0"]) == 0.0
    assert parse_parameter("stop", ["<a>", "b"]) == ["<a>", "b"]
    assert parse_parameter("use_mmap", ["true"]) is True
    with pytest.raises(ParameterError, match=r"invalid int value \[five\]"):
        parse_parameter("num_predict", ["five"])
    with pytest.raises(ParameterError, match="unknown parameter 'colour'"):
        parse_parameter("colour", ["red"])


def test_modelfile():
    mf = parse_modelfile('# comment\nFROM ./folder\nPARAMETER temperature 0.5\nPARAMETER stop "<|im_end|>"\n'
                         'PARAMETER stop "</s>"\nSYSTEM """You are\nterse."""\nTEMPLATE "{{ .Prompt }}"\n'
                         "LICENSE MIT\nMESSAGE user Hi\nMESSAGE assistant Hello!\n")
    assert mf.source == "./folder"
    assert mf.request_fields() == {
        "parameters": {"temperature": 0.5, "stop": ["<|im_end|>", "</s>"]},
        "template": "{{ .Prompt }}", "system": "You are\nterse.", "license": ["MIT"],
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    }
    with pytest.raises(ValueError, match="no FROM"):
        parse_modelfile("SYSTEM hi\n")
    with pytest.raises(ValueError, match="ADAPTER"):
        parse_modelfile("FROM x\nADAPTER ./lora\n")
