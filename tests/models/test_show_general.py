"""/api/show's `general.*` keys for a model dequantised from a GGUF (the embedded SmolLM2, a
`create` from a GGUF): the GGUF's own, as Ollama shows them for it (golden 05), recorded at
conversion in vllama_source.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.models.fake_repo import write_tiny_model
from vllama.api.ollama import show
from vllama.models import gguf
from vllama.models.store import ModelStore

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

GOLDEN = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ollama-golden" / "05-post-api-show.txt"


def write_gguf_with_general(path: Path) -> Path:
    """A GGUF whose general.* metadata is the recorded SmolLM2 GGUF's."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("SmolLM2 135M Instruct")
    writer.add_type("model")
    writer.add_organization("HuggingFaceTB")
    writer.add_finetune("8k-lc100k-mix1-ep2")
    writer.add_basename("smollm2")
    writer.add_size_label("135M")
    writer.add_license("apache-2.0")
    writer.add_languages(["en"])
    writer.add_file_type(3)
    writer.add_quantization_version(2)
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def golden_model_info() -> dict:
    text = GOLDEN.read_text().split("\n----\n")[1]
    return json.loads(text.split("\n\n", 1)[1])["model_info"]


@pytest.fixture
def described(tmp_path) -> dict:
    return gguf._describe(write_gguf_with_general(tmp_path / "m.gguf"), "float32")


def test_conversion_records_the_ggufs_general_keys(described):
    assert described["general"] == {
        "general.type": "model", "general.organization": "HuggingFaceTB", "general.finetune": "8k-lc100k-mix1-ep2",
        "general.basename": "smollm2", "general.size_label": "135M", "general.license": "apache-2.0",
        "general.languages": None,  # an array: Ollama's show prints null
        "general.quantization_version": 2,
    }


@pytest.mark.skipif(not GOLDEN.is_file(), reason="the reference recordings are not next to this checkout")
def test_show_prints_them_for_the_dequantised_model(described, tmp_path):
    folder = write_tiny_model(tmp_path / "smol", extra={gguf.SOURCE_FILE: json.dumps(described).encode()})
    model = ModelStore(tmp_path / "store").create_from_folder("smollm2:135m", folder)
    info = show.model_info(model)
    recorded = golden_model_info()
    ours = {k: v for k, v in info.items() if k.startswith("general.")}
    theirs = {k: v for k, v in recorded.items() if k.startswith("general.")}
    assert list(ours) == sorted(theirs)  # the same keys, sorted as Ollama sorts them
    for key in ("general.basename", "general.size_label", "general.license", "general.finetune",
                "general.languages", "general.quantization_version", "general.organization", "general.type"):
        assert ours[key] == theirs[key], key
    # what vllama serves is its own: the dequantised weights' count and type, not the GGUF's
    assert info["general.file_type"] == 0 and info["general.parameter_count"] == 64128
    assert list(info) == sorted(info)


def test_a_folder_from_elsewhere_shows_no_gguf_keys(tmp_path):
    model = ModelStore(tmp_path / "store").create_from_folder("tiny", write_tiny_model(tmp_path / "tiny"))
    assert "general.size_label" not in show.model_info(model)
    assert gguf.source_general(tmp_path / "nowhere") == {}


def test_an_older_source_file_without_general_is_taken(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / gguf.SOURCE_FILE).write_text(json.dumps({"format": "gguf", "file_type": "Q4_1"}))
    assert gguf.source_general(folder) == {}
