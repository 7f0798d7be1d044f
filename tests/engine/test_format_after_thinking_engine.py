"""`format` on a thinking model, on the real engine: the model thinks first, then answers in JSON.

The tiny random Llama is rebuilt with `<think>`/`</think>` in its vocabulary (added tokens that are not
special, as Qwen3's are) and a chat template that writes `<think>` nowhere in the prompt (the model
opens its thought itself, and `think` changes nothing in the prompt). A random model never writes
those tokens, so a logits processor stands in for a thinking model: it favours `<think>` as the
reply's first token and `</think>` as its seventh. The engine's grammar masks what it does not allow,
so where `format` holds from the first token the processor changes nothing.

Served through the app on the real engine (server.build: the engine is started with the reasoning
parser the model gets; serving decides per request whether the model thinks first; the runner tells
vLLM per request whether the grammar waits for the end of the thought).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from vllama.engine.args import EngineSettings

pytestmark = pytest.mark.engine

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
THOUGHT_TOKENS = 6  # free tokens of thought before the processor favours `</think>`
# A template that strips past thoughts from history (as thinking models' templates do) and opens none.
TEMPLATE = (
    "{%- for message in messages %}"
    "{%- set content = message['content'] if message['content'] is string else '' %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
NAME = "thinky"

def build_thinking_tiny(dest: Path) -> Path:
    """The tiny Llama with `<think>`/`</think>` tokens and TEMPLATE (built once per session folder)."""
    from tests.fixtures import tiny_model

    if (dest / "model.safetensors").is_file():
        return dest
    dest.mkdir(parents=True)
    tiny_model._write_model(dest, tiny_model.SEED, tiny_model.SPECIAL_TOKENS + [THINK_OPEN, THINK_CLOSE])
    tokenizer = json.loads((dest / "tokenizer.json").read_text())
    for token in tokenizer["added_tokens"]:
        if token["content"] in (THINK_OPEN, THINK_CLOSE):
            token["special"] = False  # detokenised into the text, as Qwen3's think tags are
    (dest / "tokenizer.json").write_text(json.dumps(tokenizer))
    config = json.loads((dest / "tokenizer_config.json").read_text())
    config["chat_template"] = TEMPLATE
    (dest / "tokenizer_config.json").write_text(json.dumps(config))
    (dest / "chat_template.jinja").write_text(TEMPLATE)
    return dest


@contextmanager
def served_thinking_tiny(tmp_path_factory, name: str, processor: type) -> Iterator[Any]:
    """The thinking tiny Llama as `name`, served by the app (a TestClient) on the real engine with
    `processor` (tests/engine/thinking_processors.py) standing in for a thinking model."""
    from starlette.testclient import TestClient

    from vllama.models.store import ModelStore
    from vllama.server import build

    folder = build_thinking_tiny(tmp_path_factory.mktemp(name) / "tiny-think")
    store = ModelStore(tmp_path_factory.mktemp("models"))
    store.create_from_folder(name, folder)
    settings = EngineSettings(overrides={"kv_cache_memory_bytes": 64 << 20, "max_model_len": 1024,
                                         "logits_processors": [processor]})
    settings.apply_process_env()
    with TestClient(build(settings, store)) as test_client:  # its exit unloads the engine
        yield test_client
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from tests.engine.thinking_processors import ThinkThenFinish  # imports vLLM: not at collection

    with served_thinking_tiny(tmp_path_factory, NAME, ThinkThenFinish) as test_client:
        yield test_client


def chat(client, **fields) -> dict:
    body = {"model": NAME, "messages": [{"role": "user", "content": "Give me a JSON object."}],
            # no stop strings: vLLM holds back len(stop) - 1 characters of text for them, which shifts the
            # text against the token ids vLLM's reasoning parser splits it by (see vllama's issues)
            "stream": False, "options": {"temperature": 0, "num_predict": 48, "stop": []}, **fields}
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_model_is_a_thinking_model_on_vllms_parser(client):
    shown = client.post("/api/show", json={"model": NAME}).json()
    assert "thinking" in shown["capabilities"]
    # unconstrained, the processor makes it think: the thought is split off the answer
    message = chat(client, think=True)["message"]
    assert message.get("thinking") and THINK_OPEN not in message["content"]
    # the engine was started with the parser serving reads the reply with, and it fits the tokenizer
    [entry] = client.app.state.scheduler.loaded()
    assert entry.runner.reasoning_parser == "deepseek_r1" and entry.runner.thinks_first


def test_format_json_with_think_applies_after_the_thought(client):
    message = chat(client, think=True, format="json")["message"]
    thinking, content = message.get("thinking", ""), message["content"]
    assert thinking.strip() and THINK_OPEN not in thinking and THINK_CLOSE not in thinking
    assert not thinking.lstrip().startswith("{")  # free text: the grammar waited for the thought's end
    assert isinstance(json.loads(content), dict)


def test_format_schema_with_think_applies_after_the_thought(client):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    message = chat(client, think=True, format=schema)["message"]
    assert message.get("thinking", "").strip()
    assert json.loads(message["content"])["answer"] in ("yes", "no")


def test_format_without_think_is_json_from_the_first_token(client):
    """think false renders the same prompt here (the template takes no enable_thinking): the engine is
    told the reasoning has ended, or its grammar would wait for a `</think>` and the reply run free."""
    message = chat(client, think=False, format="json")["message"]
    assert not message.get("thinking")
    assert message["content"].startswith("{")
    assert isinstance(json.loads(message["content"]), dict)
