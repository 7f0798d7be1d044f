"""Images on /api/generate, /api/chat and /v1/chat/completions: a model without vision answers
Ollama's error; a vision model's engine request carries the decoded images, and the chat template
gets one image part per image (where vLLM's processor puts the model's placeholder tokens)."""

from __future__ import annotations

import base64
import io

import httpx
import pytest

from tests.api.fake_engine import FakeRunner, FakeStore
from tests.api.shared_app import shared_app
from vllama.engine.base import InvalidRequest
from vllama.engine.runner import decode_images, image_parts
from vllama.serving.images import NO_VISION


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(out, format="PNG")
    return out.getvalue()


IMAGE = base64.b64encode(png()).decode()


@pytest.fixture(scope="module")
def shared():
    store = FakeStore(["fake:latest", "eyes:latest"])
    for model in store.models.values():
        if model.name.startswith("eyes"):
            model.capabilities = ["completion", "vision"]
    with shared_app(store) as app:
        yield app


@pytest.fixture
def runner(shared):
    runner = FakeRunner()
    shared.reset(runner)
    return runner


def requests_for(model: str) -> list[tuple[str, dict]]:
    return [
        ("/api/generate", {"model": model, "prompt": "What is this?", "images": [IMAGE], "stream": False}),
        ("/api/chat", {"model": model, "stream": False,
                       "messages": [{"role": "user", "content": "What is this?", "images": [IMAGE]}]}),
        ("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}}]}]}),
    ]


def test_a_model_without_vision_refuses_images_as_ollama_does(shared, runner):
    for path, body in requests_for("fake"):
        r = httpx.post(shared.url + path, json=body)
        assert r.status_code == 400, (path, r.text)
        error = r.json()["error"]
        assert (error["message"] if isinstance(error, dict) else error) == NO_VISION
    assert runner.requests == []


def test_a_vision_model_gets_the_images(shared, runner):
    for path, body in requests_for("eyes"):
        r = httpx.post(shared.url + path, json=body)
        assert r.status_code == 200, (path, r.text)
        assert runner.requests[-1].images == [png()], path
    r = httpx.post(shared.url + "/api/generate", json={"model": "eyes", "prompt": "Hi", "stream": False})
    assert r.status_code == 200 and runner.requests[-1].images == []


def test_image_parts_for_the_chat_template():
    messages = [{"role": "system", "content": "s"},
                {"role": "user", "content": "What?", "images": ["a", "b"]}]
    assert image_parts(messages) == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "What?"}]}]


def test_images_decode_for_vllm():
    (image,) = decode_images([png()])
    assert image.size == (4, 4) and image.mode == "RGB"
    with pytest.raises(InvalidRequest):
        decode_images([b"not an image"])
