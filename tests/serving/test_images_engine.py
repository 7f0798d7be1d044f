"""Images reach a vision model on the real engine, on /api/generate, /api/chat and /v1/chat/completions.

The model is the tiny random Idefics3 (tests/fixtures/tiny_vlm.py), served by one real `vllama
serve` on a loopback socket, driven by the `ollama` and `openai` clients and raw httpx. Its text
means nothing; what is checked is the plumbing: the chat template writes one `<image>` per image,
vLLM's multimodal processor replaces each with the image's IMAGE_TOKENS tokens (so the engine saw
the image), and prompt_eval_count (usage.prompt_tokens on /v1) is the engine's prompt length. One
image adds exactly IMAGE_TOKENS to the same request without it, two add twice that, whatever the
images' sizes (the processor resizes them). `/api/show` says `vision` for this model only.
"""

from __future__ import annotations

import base64
import io
import json
import shutil

import pytest

from tests.conftest import ENGINE_ENV, TINY
from tests.fixtures.tiny_vlm import IMAGE_TOKENS, tiny_vlm_dir
from tests.live_server import HTTP, vllama_process

pytestmark = pytest.mark.engine
VLM = "tiny-vlm"
NESTED = "tiny-vlm-nested"  # the same model, its context only under text_config (as most VLM configs)
QUESTION = "What is in this picture?"
ONE_TOKEN = {"temperature": 0, "num_predict": 1}  # the reply does not matter: one token is enough


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


# Different sizes and shapes on purpose: every image is resized to the same tokens.
IMAGES = [png((40, 24), (255, 0, 0)), png((8, 96), (0, 0, 255))]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_folder) -> str:
    """One real `vllama serve` with the tiny VLM and the text-only tiny Llama in its store."""
    from vllama.models.store import ModelStore

    root = tmp_path_factory.mktemp("vlm-store")
    store = ModelStore(root / "models")
    store.create_from_folder(VLM, tiny_vlm_dir())
    store.create_from_folder(TINY, tiny_folder)
    nested = root / "nested"
    shutil.copytree(tiny_vlm_dir(), nested)
    config = json.loads((nested / "config.json").read_text())
    config.pop("max_position_embeddings", None)  # the fixture has it under text_config only too, today
    (nested / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    store.create_from_folder(NESTED, nested)
    with vllama_process(root / "models", env=ENGINE_ENV, log_path=root / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def ollama_client(server):
    import ollama

    return ollama.Client(host=server, timeout=300)


@pytest.fixture(scope="module")
def openai_client(server):
    import openai

    return openai.OpenAI(base_url=server + "/v1", api_key="ollama", max_retries=0, timeout=300)


def assert_images_counted(counts: list[int]) -> None:
    """Prompt lengths with 0, 1 and 2 images: each image is its IMAGE_TOKENS tokens in the engine's
    prompt, in place of the one `<image>` the template wrote."""
    none, one, two = counts
    assert none < one < two, counts
    assert (one - none, two - one) == (IMAGE_TOKENS, IMAGE_TOKENS), counts


def test_show_says_vision_for_the_vision_model_only(server, ollama_client):
    assert "vision" in ollama_client.show(VLM).capabilities
    assert "vision" not in ollama_client.show(TINY).capabilities
    r = HTTP.post(server + "/api/show", json={"model": VLM})
    assert r.status_code == 200 and r.json()["capabilities"] == ["completion", "vision"]


def test_generate_counts_the_images(ollama_client):
    counts = [ollama_client.generate(model=VLM, prompt=QUESTION, images=IMAGES[:n], options=ONE_TOKEN)
              .prompt_eval_count for n in range(3)]
    assert_images_counted(counts)


def test_generate_streamed_counts_the_images(server):
    """Raw NDJSON: the last line's prompt_eval_count, the images sent as the wire's base64."""
    counts = []
    for n in range(3):
        body = {"model": VLM, "prompt": QUESTION, "options": ONE_TOKEN,
                "images": [base64.b64encode(image).decode() for image in IMAGES[:n]]}
        with HTTP.stream("POST", server + "/api/generate", json=body, timeout=300) as r:
            assert r.status_code == 200
            lines = [json.loads(line) for line in r.iter_lines() if line]
        assert lines[-1]["done"] is True
        counts.append(lines[-1]["prompt_eval_count"])
    assert_images_counted(counts)


def test_chat_counts_the_images(ollama_client):
    def count(n: int) -> int:
        message = {"role": "user", "content": QUESTION, "images": IMAGES[:n]}
        return ollama_client.chat(model=VLM, messages=[message], options=ONE_TOKEN).prompt_eval_count

    assert_images_counted([count(n) for n in range(3)])


def test_chat_counts_images_in_earlier_turns(ollama_client):
    """An image in the history reaches the engine too, in its place in the conversation."""
    def count(n: int) -> int:
        messages = [{"role": "user", "content": QUESTION, "images": IMAGES[:n]},
                    {"role": "assistant", "content": "A colour."},
                    {"role": "user", "content": "And now?"}]
        return ollama_client.chat(model=VLM, messages=messages, options=ONE_TOKEN).prompt_eval_count

    assert_images_counted([count(n) for n in range(3)])


def test_openai_chat_counts_the_images(openai_client):
    """As Ollama, /v1 makes each content part its own user message: an image part costs its tokens
    plus an empty turn's, which an empty text part in its place measures."""
    def count(parts: list[dict]) -> int:
        r = openai_client.chat.completions.create(
            model=VLM, messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}, *parts]}],
            max_tokens=1, temperature=0)
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        return r.usage.prompt_tokens

    images = [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(image).decode()}}
              for image in IMAGES]
    with_images = [count(images[:n]) for n in range(3)]
    empty_turns = [count([{"type": "text", "text": ""}] * n) for n in (1, 2)]
    assert with_images[0] < with_images[1] < with_images[2], with_images
    assert [with_images[n] - empty_turns[n - 1] for n in (1, 2)] == [IMAGE_TOKENS, 2 * IMAGE_TOKENS], (
        with_images, empty_turns)


def test_the_pixels_reach_the_model(ollama_client):
    """Not judging the text: the same request with another picture gets another greedy reply, and
    with the same picture the same one."""
    red, blue = png((40, 24), (255, 0, 0)), png((40, 24), (0, 0, 255))

    def reply(picture: bytes) -> str:
        message = {"role": "user", "content": QUESTION, "images": [picture]}
        options = {"temperature": 0, "num_predict": 8}
        return ollama_client.chat(model=VLM, messages=[message], options=options).message.content

    first = reply(red)
    assert reply(blue) != first
    assert reply(red) == first


def test_an_image_that_is_not_one_is_the_clients_error(ollama_client):
    import ollama

    with pytest.raises(ollama.ResponseError) as err:
        ollama_client.generate(model=VLM, prompt=QUESTION, images=[b"not an image"], options=ONE_TOKEN)
    assert err.value.status_code == 400
    # the engine survived it
    assert ollama_client.generate(model=VLM, prompt=QUESTION, images=IMAGES[:1], options=ONE_TOKEN).done



def test_a_vision_model_with_its_context_under_text_config_loads(ollama_client):
    r = ollama_client.generate(model=NESTED, prompt=QUESTION, images=IMAGES[:1], options=ONE_TOKEN)
    assert r.prompt_eval_count > IMAGE_TOKENS
