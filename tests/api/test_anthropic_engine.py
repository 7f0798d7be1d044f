"""/v1/messages on the real vLLM engine through the `anthropic` SDK's `client.messages`."""

from __future__ import annotations

import base64
import io

import httpx
import pytest

from tests.conftest import SMOL

pytestmark = pytest.mark.engine
# the SDK (2.x) has no sampling parameters any more; /v1/messages still reads them, as Ollama does
GREEDY = {"temperature": 0}
TOOLS = [{"name": "get_weather", "description": "The weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture(scope="module")
def client(server):
    import anthropic

    return anthropic.Anthropic(base_url=server, api_key="ollama", max_retries=0, timeout=300)


def test_plain_streamed_and_system(client):
    kwargs = {"model": SMOL, "max_tokens": 12, "extra_body": GREEDY, "system": "Answer in one word.",
              "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    message = client.messages.create(**kwargs)
    assert message.model == SMOL and message.stop_reason in ("end_turn", "max_tokens")
    assert "Paris" in message.content[0].text
    assert message.usage.input_tokens > 5 and 0 < message.usage.output_tokens <= 12
    with client.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == message.content[0].text and final.usage.output_tokens == message.usage.output_tokens


def png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_tool_and_image_requests(client, server):
    import anthropic

    capabilities = httpx.post(server + "/api/show", json={"model": SMOL}).json()["capabilities"]
    ask = {"model": SMOL, "max_tokens": 40, "extra_body": GREEDY,
           "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    if "tools" in capabilities:
        message = client.messages.create(**ask, tools=TOOLS)
        assert message.stop_reason in ("tool_use", "end_turn", "max_tokens")
    else:  # Ollama's answer for such a model, in Anthropic's shape
        with pytest.raises(anthropic.BadRequestError, match="does not support tools"):
            client.messages.create(**ask, tools=TOOLS)
    # no vision model here: the image block is parsed and handed on as the native API carries it, and
    # a model without vision refuses images as Ollama's runner does (vllama/serving/images.py)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png()}}
    with pytest.raises(anthropic.BadRequestError, match="missing data required for image input"):
        client.messages.create(model=SMOL, max_tokens=8, messages=[
            {"role": "user", "content": [image, {"type": "text", "text": "What colour is this?"}]}])
