"""The PyPI `openai` client against vllama's OpenAI-compatible layer at /v1."""

from __future__ import annotations

from typing import Any

from . import checks
from .core import UNKNOWN_MODEL, Case, Config, Target, check, skipped
from .py_client import JSON_PROMPT, JSON_TOKENS, json_answer

CLIENT = "openai"
QUESTION = [{"role": "user", "content": "Why is the sky blue?"}]


class OpenAICases:
    def __init__(self, config: Config, target: Target):
        import openai

        self.config, self.target, self.model = config, target, config.model
        self.openai = openai
        self.client = openai.OpenAI(base_url=config.url + "/v1", api_key="vllama", timeout=config.timeout,
                                    max_retries=0)
        self.sampling = {"max_tokens": config.num_predict, "temperature": 0, "seed": 1}

    def cases(self) -> list[Case]:
        c = lambda name, fn: Case(CLIENT, name, fn)  # noqa: E731
        return [
            c("models-list", self.models_list),
            c("models-retrieve", self.models_retrieve),
            c("chat", self.chat),
            c("chat-stream", self.chat_stream),
            c("chat-stream-usage", self.chat_stream_usage),
            c("chat-json-mode", self.json_mode),
            c("completions", self.completions),
            c("completions-stream", self.completions_stream),
            c("embeddings", self.embeddings),
            c("embeddings-float", self.embeddings_float),
            c("error-unknown-model-404", self.unknown_model),
            c("error-empty-messages-400", self.empty_messages),
        ]

    def models_list(self) -> str:
        ids = [m.id for m in self.client.models.list()]
        check(any(checks.same_model(i, self.model) for i in ids), f"{self.model} not in {ids}")
        return f"{len(ids)} models"

    def models_retrieve(self) -> str:
        m = self.client.models.retrieve(self.model)
        check(m.id == self.model and m.object == "model", f"retrieved {m}")
        return m.owned_by

    def chat(self) -> str:
        r = self.client.chat.completions.create(model=self.model, messages=QUESTION, **self.sampling)
        check(r.object == "chat.completion" and r.model == self.model, f"object {r.object}, model {r.model}")
        choice = r.choices[0]
        check(choice.message.role == "assistant" and isinstance(choice.message.content, str), "no assistant message")
        check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason}")
        check(r.usage and r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0, f"usage {r.usage}")
        check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "usage does not add up")
        return repr(choice.message.content)

    def _stream(self, **extra: Any) -> tuple[list[Any], str]:
        chunks = list(self.client.chat.completions.create(model=self.model, messages=QUESTION, stream=True,
                                                          **self.sampling, **extra))
        check(chunks, "no chunks")
        check(all(c.object == "chat.completion.chunk" for c in chunks), "a chunk of another object type")
        check(len({c.id for c in chunks}) == 1, "the chunks do not share one id")
        with_choices = [c for c in chunks if c.choices]
        check(with_choices[0].choices[0].delta.role == "assistant", "the first delta has no assistant role")
        check(with_choices[-1].choices[0].finish_reason in ("stop", "length"), "no finish chunk")
        check(all(c.choices[0].finish_reason is None for c in with_choices[:-1]), "finish_reason before the end")
        text = "".join(c.choices[0].delta.content or "" for c in with_choices)
        return chunks, text

    def chat_stream(self) -> str:
        chunks, text = self._stream()
        check(all(c.usage is None for c in chunks), "usage without stream_options.include_usage")
        return f"{len(chunks)} chunks: {text!r}"

    def chat_stream_usage(self) -> str:
        chunks, text = self._stream(stream_options={"include_usage": True})
        last = chunks[-1]
        check(not last.choices and last.usage and last.usage.completion_tokens > 0, f"last chunk {last}")
        return f"usage {last.usage.prompt_tokens}+{last.usage.completion_tokens}"

    def json_mode(self) -> str:
        r = self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": JSON_PROMPT}],
            response_format={"type": "json_object"}, **{**self.sampling, "max_tokens": JSON_TOKENS})
        text = r.choices[0].message.content or ""
        check(isinstance(json_answer(text, r.choices[0].finish_reason), dict), f"not a JSON object: {text!r}")
        return text

    def completions(self) -> str:
        r = self.client.completions.create(model=self.model, prompt="The capital of France is", **self.sampling)
        check(r.object == "text_completion", f"object {r.object}")
        check(isinstance(r.choices[0].text, str) and r.choices[0].finish_reason in ("stop", "length"),
              f"choice {r.choices[0]}")
        check(r.usage and r.usage.completion_tokens > 0, f"usage {r.usage}")
        return repr(r.choices[0].text)

    def completions_stream(self) -> str:
        chunks = list(self.client.completions.create(model=self.model, prompt="The capital of France is",
                                                     stream=True, **self.sampling))
        check(chunks and all(c.object == "text_completion" for c in chunks), "no text_completion chunks")
        check(chunks[-1].choices[0].finish_reason in ("stop", "length"), "no finish_reason at the end")
        return repr("".join(c.choices[0].text for c in chunks))

    def embeddings(self) -> str:
        # the SDK asks for base64 unless told otherwise, and decodes it
        model = self.target.embed_model()
        r = self.client.embeddings.create(model=model, input=["Why is the sky blue?", "Hello"])
        check(len(r.data) == 2 and [d.index for d in r.data] == [0, 1], f"data {r.data!r:.80}")
        check(all(d.object == "embedding" and len(d.embedding) > 0 for d in r.data), "empty embeddings")
        check(r.usage.prompt_tokens > 0, f"usage {r.usage}")
        return f"{len(r.data[0].embedding)} dimensions"

    def embeddings_float(self) -> str:
        model = self.target.embed_model()
        r = self.client.embeddings.create(model=model, input="Hello", encoding_format="float")
        check(all(isinstance(x, float) for x in r.data[0].embedding), "not floats")
        return f"{len(r.data[0].embedding)} dimensions"

    def unknown_model(self) -> str:
        try:
            self.client.chat.completions.create(model=UNKNOWN_MODEL, messages=QUESTION, max_tokens=1)
        except self.openai.NotFoundError as err:
            check(f"model '{UNKNOWN_MODEL}' not found" in err.message, err.message)
            return f"NotFoundError: {err.message}"
        raise AssertionError("no NotFoundError")

    def empty_messages(self) -> str:
        try:
            self.client.chat.completions.create(model=self.model, messages=[], max_tokens=1)
        except self.openai.BadRequestError as err:
            return f"BadRequestError: {err.message}"
        raise AssertionError("no BadRequestError")


def cases(config: Config, target: Target) -> list[Case]:
    try:
        import openai  # noqa: F401
    except ImportError:
        return [skipped(CLIENT, "import", "the openai package is not installed")]
    return OpenAICases(config, target).cases()
