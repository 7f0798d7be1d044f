"""The PyPI `openai` client's Responses API (`client.responses`) against vllama's /v1/responses."""

from __future__ import annotations

import json
from typing import Any

from .core import UNKNOWN_MODEL, Case, Config, Target, check, skipped
from .py_client import JSON_TOKENS

CLIENT = "openai-responses"
QUESTION = "Why is the sky blue?"
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"],
          "additionalProperties": False}


class ResponsesCases:
    def __init__(self, config: Config, target: Target):
        import openai

        self.config, self.target, self.model = config, target, config.model
        self.openai = openai
        self.client = openai.OpenAI(base_url=config.url + "/v1", api_key="vllama", timeout=config.timeout,
                                    max_retries=0)
        self.sampling: dict[str, Any] = {"max_output_tokens": config.num_predict, "temperature": 0}

    def cases(self) -> list[Case]:
        c = lambda name, fn: Case(CLIENT, name, fn)  # noqa: E731
        return [
            c("create", self.create),
            c("create-stream", self.stream),
            c("function-tool", self.function_tool),
            c("json-schema", self.json_schema),
            c("error-unknown-model-404", self.unknown_model),
        ]

    def create(self) -> str:
        r = self.client.responses.create(model=self.model, input=QUESTION, instructions="Be brief.", **self.sampling)
        check(r.object == "response" and r.status == "completed" and r.model == self.model, f"response {r.status}")
        check(r.output and r.output[-1].type == "message", f"output {r.output}")
        check(r.usage and r.usage.output_tokens > 0 and r.usage.input_tokens > 0, f"usage {r.usage}")
        check(r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, "usage does not add up")
        return repr(r.output_text)

    def stream(self) -> str:
        events = list(self.client.responses.create(model=self.model, input=QUESTION, stream=True, **self.sampling))
        kinds = [e.type for e in events]
        check(kinds[:2] == ["response.created", "response.in_progress"], f"begins {kinds[:2]}")
        check(kinds[-1] == "response.completed", f"ends {kinds[-1]}")
        check([e.sequence_number for e in events] == list(range(len(events))), "sequence numbers out of order")
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        check(text == events[-1].response.output_text, "the deltas do not add up to the completed text")
        return f"{len(events)} events: {text!r}"

    def function_tool(self) -> str:
        ask = {"model": self.model, "input": "What is the weather in Paris?", "tools": [WEATHER], **self.sampling}
        if "tools" not in self.target.capabilities(self.model):
            try:
                self.client.responses.create(**ask)
            except self.openai.BadRequestError as err:
                check("does not support tools" in err.message, err.message)
                return f"BadRequestError: {err.message}"
            raise AssertionError("a model without tools took a function tool")
        r = self.client.responses.create(**ask)
        check(r.status == "completed", f"status {r.status}")
        calls = [o for o in r.output if o.type == "function_call"]
        for call in calls:
            check(call.name == "get_weather" and isinstance(json.loads(call.arguments), dict), f"call {call}")
        return f"{len(calls)} function calls"

    def json_schema(self) -> str:
        r = self.client.responses.create(
            model=self.model, input='Reply with {"answer": true} if the sky is blue.',
            text={"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}},
            **{**self.sampling, "max_output_tokens": JSON_TOKENS})
        check(isinstance(json.loads(r.output_text).get("answer"), bool), f"not the schema: {r.output_text!r}")
        return r.output_text

    def unknown_model(self) -> str:
        try:
            self.client.responses.create(model=UNKNOWN_MODEL, input="hi", max_output_tokens=1)
        except self.openai.NotFoundError as err:
            check(f"model '{UNKNOWN_MODEL}' not found" in err.message, err.message)
            return f"NotFoundError: {err.message}"
        raise AssertionError("no NotFoundError")


def cases(config: Config, target: Target) -> list[Case]:
    try:
        import openai  # noqa: F401
    except ImportError:
        return [skipped(CLIENT, "import", "the openai package is not installed")]
    return ResponsesCases(config, target).cases()
