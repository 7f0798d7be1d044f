"""`hf.co/ORG/REPO:QUANT`: in a Hub repo of GGUF files the tag picks the file by quantization."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.models.gguf_files import write_gguf
from tests.models.hub_stand_in import Repo
from vllama.models.hub_gguf import ABSENT_QUANT, DEFAULT_QUANT, INVALID_QUANT, choose, quant_of
from vllama.models.pull import PullError, pull

GGUF_REPO = "acme/Tiny-GGUF"
SPLIT_REPO = "acme/Split-GGUF"


@pytest.mark.parametrize("path, quant", [
    ("Tiny-Q4_K_M.gguf", "Q4_K_M"), ("tiny.q8_0.gguf", "q8_0"), ("sub/Tiny-F16.gguf", "F16"),
    ("Big-IQ4_XS-00001-of-00003.gguf", "IQ4_XS"), ("m-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"), ("model.gguf", None),
])
def test_quant_of(path, quant):
    assert quant_of(path) == quant


def test_choose():
    files = ["Tiny-F16.gguf", "Tiny-Q4_K_M.gguf", "Tiny-Q8_0.gguf", "mmproj-Tiny-F16.gguf", "README.md"]
    assert choose(files, "latest").paths == ("Tiny-Q4_K_M.gguf",)
    assert choose(files, "q8_0").paths == ("Tiny-Q8_0.gguf",)  # case-insensitive, as the Hub has it
    assert choose(["A-Q8_0.gguf", "A-F16.gguf"], "latest").paths == ("A-F16.gguf",)  # no Q4_K_M: the first
    split = [f"B-Q4_K_M-0000{i}-of-00002.gguf" for i in (2, 1)]
    assert choose(split, "Q4_K_M").paths == tuple(sorted(split))
    with pytest.raises(ValueError) as absent:
        choose(files, "Q5_K_S")
    assert str(absent.value) == ABSENT_QUANT
    with pytest.raises(ValueError) as invalid:
        choose(files, "v1.2")
    assert str(invalid.value) == INVALID_QUANT
    assert DEFAULT_QUANT == "Q4_K_M"


@pytest.fixture
def gguf_hub(hub, tmp_path):
    files = {f"Tiny-{q}.gguf": write_gguf(tmp_path / f"{q}.gguf", q, seed=i)
             for i, q in enumerate(("Q4_K_M", "Q8_0", "F16"))}
    hub.repos[GGUF_REPO] = Repo({**files, "README.md": b"# three quantizations\n"})
    parts = {f"Split-Q4_K_M-0000{i}-of-00002.gguf": write_gguf(tmp_path / f"part{i}.gguf", seed=10 + i) for i in (1, 2)}
    hub.repos[SPLIT_REPO] = Repo({**parts, "Split-Q8_0.gguf": write_gguf(tmp_path / "s8.gguf", "Q8_0", seed=20)})
    return hub


def collect(store, name):
    async def go():
        events = []
        try:
            async for event in pull(store, name):
                events.append(event)
        except PullError as err:
            return events, str(err)
        return events, None

    return asyncio.run(go())


def _cdn_gets(hub) -> set[str]:
    return {path.removeprefix("/cdn/") for method, path, _ in hub.requests if method == "GET" and path.startswith("/cdn/")}


def test_the_tag_pulls_exactly_that_quantization(store, gguf_hub):
    events, error = collect(store, f"hf.co/{GGUF_REPO}:Q4_K_M")
    assert error is None and events[-1] == {"status": "success"}
    wanted = hashlib.sha256(gguf_hub.repos[GGUF_REPO].files["Tiny-Q4_K_M.gguf"]).hexdigest()
    assert _cdn_gets(gguf_hub) == {wanted}  # not the Q8_0 nor the F16
    model = store.get(f"hf.co/{GGUF_REPO}:Q4_K_M")
    assert [layer.digest for layer in model.ollama.layers] == [f"sha256:{wanted}"]
    assert model.details["format"] == "gguf" and model.details["quantization_level"] == "Q4_K_M"
    assert model.name == f"hf.co/{GGUF_REPO}:Q4_K_M"


def test_latest_is_q4_k_m_and_tags_are_case_insensitive(store, gguf_hub):
    assert collect(store, f"hf.co/{GGUF_REPO}")[1] is None
    assert store.get(f"hf.co/{GGUF_REPO}").details["quantization_level"] == "Q4_K_M"
    assert collect(store, f"hf.co/{GGUF_REPO}:q8_0")[1] is None
    assert store.get(f"hf.co/{GGUF_REPO}:q8_0").details["quantization_level"] == "Q8_0"


def test_an_absent_quantization_is_ollamas_error(store, gguf_hub):
    assert collect(store, f"hf.co/{GGUF_REPO}:Q5_K_S") == ([{"status": "pulling manifest"}], ABSENT_QUANT)
    assert store.list() == [] and not _cdn_gets(gguf_hub)


def test_a_split_gguf_pulls_every_part(store, gguf_hub):
    assert collect(store, f"hf.co/{SPLIT_REPO}:Q4_K_M")[1] is None
    files = gguf_hub.repos[SPLIT_REPO].files
    parts = [f"sha256:{hashlib.sha256(files[f'Split-Q4_K_M-0000{i}-of-00002.gguf']).hexdigest()}" for i in (1, 2)]
    assert [layer.digest for layer in store.get(f"hf.co/{SPLIT_REPO}:Q4_K_M").ollama.layers] == parts


def test_a_safetensors_repo_keeps_the_tag_as_a_revision(store, hub):
    sha = hub.repos["acme/Tiny-Instruct"].sha
    assert collect(store, f"hf.co/acme/Tiny-Instruct:{sha}")[1] is None
    model = store.get(f"hf.co/acme/Tiny-Instruct:{sha}")
    assert model.manifest["revision"] == sha and model.details["format"] == "safetensors"
    assert collect(store, "hf.co/acme/Tiny-Instruct:no-such-branch")[1] == "pull model manifest: file does not exist"


def test_without_a_go_template_the_ggufs_jinja_template_says_tools(store, hub, tmp_path):
    jinja = "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
    hub.repos["acme/Tools-GGUF"] = Repo({"T-Q4_K_M.gguf": write_gguf(tmp_path / "t.gguf", chat_template=jinja)})
    assert collect(store, "hf.co/acme/Tools-GGUF")[1] is None
    model = store.get("hf.co/acme/Tools-GGUF")
    assert model.template is None and model.capabilities == ["completion", "tools"]
