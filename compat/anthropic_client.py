"""The PyPI `anthropic` client's Messages API (`client.messages`) against vllama's /v1/messages."""

from __future__ import annotations

import base64
import io
from typing import Any

from .core import UNKNOWN_MODEL, Case, Config, Skip, Target, check, skipped

CLIENT = "anthropic"
QUESTION = [{"role": "user", "content": "Why is the sky blue?"}]
TOOLS = [{"name": "get_weather", "description": "The weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def red_square_png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (220, 20, 20)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class AnthropicCases:
    def __init__(self, config: Config, target: Target):
        import anthropic

        self.config, self.target, self.model = config, target, config.model
        self.anthropic = anthropic
        self.client = anthropic.Anthropic(base_url=config.url, api_key="vllama", timeout=config.timeout,
                                          max_retries=0)
        # the SDK (2.x) takes no sampling parameters; /v1/messages still reads them, as Ollama does
        self.sampling: dict[str, Any] = {"max_tokens": config.num_predict, "extra_body": {"temperature": 0}}

    def cases(self) -> list[Case]:
        c = lambda name, fn: Case(CLIENT, name, fn)  # noqa: E731
        return [
            c("create", self.create),
            c("create-stream", self.stream),
            c("system-prompt", self.system),
            c("tool", self.tool),
            c("image", self.image),
            c("error-unknown-model-404", self.unknown_model),
        ]

    def _message(self, message: Any) -> None:
        check(message.type == "message" and message.role == "assistant" and message.model == self.model,
              f"message {message.type} {message.role} {message.model}")
        check(message.stop_reason in ("end_turn", "max_tokens", "stop_sequence", "tool_use"),
              f"stop_reason {message.stop_reason}")
        check(message.usage.input_tokens > 0 and message.usage.output_tokens > 0, f"usage {message.usage}")

    def create(self) -> str:
        message = self.client.messages.create(model=self.model, messages=QUESTION, **self.sampling)
        self._message(message)
        check(message.content and message.content[0].type == "text", f"content {message.content}")
        return repr(message.content[0].text)

    def stream(self) -> str:
        with self.client.messages.stream(model=self.model, messages=QUESTION, **self.sampling) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        self._message(final)
        check(final.content[0].text == text, "the deltas do not add up to the final text")
        return repr(text)

    def system(self) -> str:
        message = self.client.messages.create(model=self.model, messages=QUESTION, **self.sampling,
                                              system=[{"type": "text", "text": "Answer in one word."}])
        self._message(message)
        return repr(message.content[0].text)

    def tool(self) -> str:
        ask = {"model": self.model, "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
               "tools": TOOLS, **self.sampling}
        if "tools" not in self.target.capabilities(self.model):
            try:
                self.client.messages.create(**ask)
            except self.anthropic.BadRequestError as err:
                check("does not support tools" in err.message, err.message)
                return f"BadRequestError: {err.message}"
            raise AssertionError("a model without tools took a tool")
        message = self.client.messages.create(**ask)
        self._message(message)
        return ", ".join(block.type for block in message.content)

    def image(self) -> str:
        try:
            data = red_square_png()
        except ImportError:
            raise Skip("Pillow is not installed") from None
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        messages = [{"role": "user", "content": [image, {"type": "text", "text": "What colour is this square?"}]}]
        if "vision" not in self.target.capabilities(self.model):
            # Ollama's runner refuses images for a model without vision (model.ErrNoVisionModel)
            try:
                self.client.messages.create(model=self.model, **self.sampling, messages=messages)
            except self.anthropic.BadRequestError as err:
                check("missing data required for image input" in err.message, err.message)
                return f"BadRequestError: {err.message} (the model has no vision)"
            raise AssertionError("an image for a model without vision was accepted")
        message = self.client.messages.create(model=self.model, **self.sampling, messages=messages)
        self._message(message)
        return repr(message.content[0].text)

    def unknown_model(self) -> str:
        try:
            self.client.messages.create(model=UNKNOWN_MODEL, messages=QUESTION, max_tokens=1)
        except self.anthropic.NotFoundError as err:
            check(f"model '{UNKNOWN_MODEL}' not found" in err.message, err.message)
            return f"NotFoundError: {err.message}"
        raise AssertionError("no NotFoundError")


def cases(config: Config, target: Target) -> list[Case]:
    try:
        import anthropic  # noqa: F401
    except ImportError:
        return [skipped(CLIENT, "import", "the anthropic package is not installed")]
    return AnthropicCases(config, target).cases()
