"""/v1/responses on the real vLLM engine through the `openai` SDK's `client.responses`."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import SMOL

pytestmark = pytest.mark.engine
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server + "/v1", api_key="ollama", max_retries=0, timeout=300)


def test_plain_and_streamed_answers_agree(client):
    kwargs = {"model": SMOL, "input": "What is the capital of France?", "instructions": "Answer in one word.",
              "max_output_tokens": 12, "temperature": 0}
    whole = client.responses.create(**kwargs)
    assert whole.status == "completed" and whole.model == SMOL and "Paris" in whole.output_text
    assert whole.usage.input_tokens > 5 and 0 < whole.usage.output_tokens <= 12
    events = list(client.responses.create(**kwargs, stream=True))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == whole.output_text
    assert events[-1].response.usage.output_tokens == whole.usage.output_tokens


def test_json_schema_and_function_tool(client, server):
    import openai

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    r = client.responses.create(model=SMOL, input="Name a city in France as JSON.", max_output_tokens=40,
                                temperature=0, text={"format": {"type": "json_schema", "name": "city",
                                                                "schema": schema, "strict": True}})
    assert isinstance(json.loads(r.output_text)["city"], str)
    capabilities = httpx.post(server + "/api/show", json={"model": SMOL}).json()["capabilities"]
    if "tools" not in capabilities:  # Ollama's answer for such a model, in OpenAI's shape
        with pytest.raises(openai.BadRequestError, match="does not support tools"):
            client.responses.create(model=SMOL, input="Weather in Paris?", tools=[WEATHER], max_output_tokens=40)
        return
    r = client.responses.create(model=SMOL, input="What is the weather in Paris?", tools=[WEATHER],
                                max_output_tokens=60, temperature=0)
    assert r.status == "completed" and r.output[0].type in ("function_call", "message")
