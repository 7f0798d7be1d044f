"""`_debug_render_only`: the rendered prompt in Ollama's `_debug_info`, nothing generated."""

from __future__ import annotations

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app
from tests.conftest import SMOL


@pytest.fixture(scope="module")
def shared():
    with shared_app(FakeStore(["fake:latest"])) as app:
        yield app


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def url(shared, runner):
    shared.reset(runner)
    return shared.url


def test_generate(url, runner):
    r = httpx.post(url + "/api/generate", json={"model": "fake", "system": "Be brief.", "prompt": "Hi",
                                                "_debug_render_only": True})  # streamed by default: one object
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert list(body) == ["model", "created_at", "response", "done", "_debug_info"]
    assert (body["model"], body["response"], body["done"]) == ("fake", "", False)
    assert body["_debug_info"] == {"rendered_template": "<system>Be brief.<user>Hi<assistant>"}
    assert not runner.requests  # nothing ran


def test_chat_with_images(url, runner):
    r = httpx.post(url + "/api/chat", json={"model": "fake", "stream": False, "_debug_render_only": True,
                                            "messages": [{"role": "user", "content": "What?", "images": ["aGk="]}]})
    body = r.json()
    assert body["message"] == {"role": "", "content": ""} and body["done"] is False
    assert body["_debug_info"] == {"rendered_template": "<user>What?<assistant>", "image_count": 1}
    assert not runner.requests


def test_raw_and_errors(url):
    r = httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "Hi there", "raw": True,
                                                "_debug_render_only": True})
    assert r.json()["_debug_info"] == {"rendered_template": "Hi there"}
    r = httpx.post(url + "/api/generate", json={"model": "nothing", "prompt": "Hi", "_debug_render_only": True})
    assert (r.status_code, r.json()) == (404, {"error": "model 'nothing' not found"})
    r = httpx.post(url + "/api/generate", json={"model": "fake", "prompt": "Hi", "_debug_render_only": "yes"})
    assert r.status_code == 400



@pytest.mark.engine
def test_the_rendered_prompt_is_what_ollama_renders_and_what_the_engine_gets(server, smol_folder):
    """Recorded from Ollama (reference/ollama-store/rendered r07) for the same model and request."""
    body = {"model": SMOL, "system": "Be brief.", "prompt": "Hi", "stream": False}
    debug = httpx.post(server + "/api/generate", json={**body, "_debug_render_only": True}, timeout=300).json()
    prompt = debug["_debug_info"]["rendered_template"]
    assert prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    ran = httpx.post(server + "/api/generate", json={**body, "options": {"num_predict": 1}}, timeout=300).json()
    from transformers import AutoTokenizer  # here, not at collection: seconds of import

    tokens = AutoTokenizer.from_pretrained(smol_folder)(prompt, add_special_tokens=False)["input_ids"]
    assert ran["prompt_eval_count"] == len(tokens)
