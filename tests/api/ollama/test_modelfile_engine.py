"""A Modelfile's SYSTEM, MESSAGE and PARAMETER at inference on the real engine, models created FROM
one weights sharing its engine, `show --modelfile` taken back by `create` through the `ollama`
client, and a larger num_ctx reloading the engine."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SMOL
from vllama.cli.modelfile import parse_modelfile

pytestmark = pytest.mark.engine

PIRATE, HISTORY, COPY = "h8-pirate", "h8-history", "h8-pirate-copy"
QUESTION = {"prompt": "Who are you?", "stream": False, "options": {"num_predict": 16, "temperature": 0, "seed": 1}}


@pytest.fixture(scope="module")
def client(server):
    import ollama

    client = ollama.Client(host=server, timeout=600)
    client.create(model=PIRATE, from_=SMOL, system="You are a pirate.", parameters={"temperature": 0})
    client.create(model=HISTORY, from_=PIRATE, messages=[{"role": "user", "content": "My name is Ann."},
                                                        {"role": "assistant", "content": "Ahoy, Ann!"}])
    yield client
    for name in (PIRATE, HISTORY, COPY):
        try:
            client.delete(name)
        except ollama.ResponseError:
            pass


def generate(server: str, **body) -> dict:
    reply = httpx.post(server + "/api/generate", json={**QUESTION, **body}, timeout=600)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_pirate_system_reaches_the_model_on_the_base_models_engine(server, client):
    base, pirate = generate(server, model=SMOL), generate(server, model=PIRATE)
    asked = generate(server, model=SMOL, system="You are a pirate.")
    assert pirate["response"] != base["response"]
    # the Modelfile's SYSTEM is the prompt a request's own system makes (and replaces the default one)
    assert pirate["prompt_eval_count"] == asked["prompt_eval_count"] != base["prompt_eval_count"]
    assert pirate["response"] == asked["response"]
    loaded = [m["name"] for m in httpx.get(server + "/api/ps").json()["models"]]
    assert len([n for n in loaded if n in (SMOL, PIRATE, HISTORY)]) == 1  # one engine for one weights


def test_message_history_is_in_the_prompt(server, client):
    debug = generate(server, model=HISTORY, _debug_render_only=True)["_debug_info"]["rendered_template"]
    assert debug == ("<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nMy name is Ann.<|im_end|>\n"
                     "<|im_start|>assistant\nAhoy, Ann!<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
                     "<|im_start|>assistant\n")
    assert generate(server, model=HISTORY)["prompt_eval_count"] > generate(server, model=PIRATE)["prompt_eval_count"]


def test_show_modelfile_is_taken_back_by_create(server, client):
    modelfile = parse_modelfile(client.show(PIRATE).modelfile)
    assert modelfile.source == f"{PIRATE}:latest"  # its own name, which create takes
    fields = modelfile.request_fields()
    client.create(model=COPY, from_=modelfile.source, system=fields.get("system"),
                  parameters=fields.get("parameters"), template=fields.get("template"))
    copy, pirate = (httpx.post(server + "/api/show", json={"model": name}).json() for name in (COPY, PIRATE))
    for key in ("system", "parameters", "template"):
        assert copy.get(key) == pirate.get(key), key
    assert copy["system"] == "You are a pirate."


def test_a_larger_num_ctx_reloads_the_engine_and_ps_shows_it(server, client):
    # 5120 tokens: what the session server's 256 MiB KV cache holds of SmolLM2 in float32 (8192 would not)
    generate(server, model=SMOL, options={"num_predict": 1, "num_ctx": 5120})
    ps = {m["name"]: m for m in httpx.get(server + "/api/ps").json()["models"]}
    smol = next(m for name, m in ps.items() if name in (SMOL, PIRATE, HISTORY, COPY))
    assert smol["context_length"] == 5120
