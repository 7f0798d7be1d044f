"""LangChain's `ChatOllama` and `OllamaEmbeddings` (langchain-ollama), which sit on ollama-python."""

from __future__ import annotations

import asyncio
from typing import Any

from .core import Case, Config, Target, check, skipped
from .py_client import JSON_TOKENS

CLIENT = "langchain"


class LangChainCases:
    def __init__(self, config: Config, target: Target):
        self.config, self.target, self.model = config, target, config.model

    def chat(self, **extra: Any) -> Any:
        from langchain_ollama import ChatOllama

        settings = {"num_predict": self.config.num_predict, "temperature": 0, "seed": 1, **extra}
        return ChatOllama(model=self.model, base_url=self.config.url, validate_model_on_init=True,
                          client_kwargs={"timeout": self.config.timeout}, **settings)

    def cases(self) -> list[Case]:
        c = lambda name, fn: Case(CLIENT, name, fn)  # noqa: E731
        return [
            c("invoke", self.invoke),
            c("stream", self.stream),
            c("ainvoke", self.ainvoke),
            c("structured-output-json-schema", self.structured),
            c("bind-tools", self.tools),
            c("embeddings", self.embeddings),
        ]

    def invoke(self) -> str:
        msg = self.chat().invoke("Why is the sky blue?")
        check(isinstance(msg.content, str) and msg.content, f"content {msg.content!r}")
        meta = msg.response_metadata
        check(meta.get("done_reason") in ("stop", "length"), f"done_reason {meta.get('done_reason')!r}")
        usage = msg.usage_metadata or {}
        check(usage.get("output_tokens", 0) > 0 and usage.get("input_tokens", 0) > 0, f"usage {usage}")
        return repr(msg.content)

    def stream(self) -> str:
        chunks = list(self.chat().stream("Why is the sky blue?"))
        check(len(chunks) > 1, f"{len(chunks)} chunks")
        whole = chunks[0]
        for chunk in chunks[1:]:
            whole = whole + chunk  # how LangChain merges a streamed message
        check(isinstance(whole.content, str) and whole.content, "no text")
        check(whole.response_metadata.get("done_reason") in ("stop", "length"), "no done_reason in the stream")
        check((whole.usage_metadata or {}).get("output_tokens", 0) > 0, f"usage {whole.usage_metadata}")
        return f"{len(chunks)} chunks: {whole.content!r}"

    def ainvoke(self) -> str:
        msg = asyncio.run(self.chat().ainvoke("Name a color."))
        check(isinstance(msg.content, str) and msg.content, f"content {msg.content!r}")
        return repr(msg.content)

    def structured(self) -> str:
        from pydantic import BaseModel

        class Answer(BaseModel):
            """Whether the statement is true."""

            answer: bool

        llm = self.chat(num_predict=JSON_TOKENS).with_structured_output(Answer, method="json_schema")
        value = llm.invoke("Is the sky blue?")
        check(isinstance(value, Answer), f"got {value!r}")
        return repr(value)

    def tools(self) -> str:
        self.target.require("tools")
        from langchain_core.tools import tool

        @tool
        def get_weather(city: str) -> str:
            """Get the weather in a city."""
            return "sunny"

        msg = self.chat(num_predict=48).bind_tools([get_weather]).invoke("What is the weather in Paris?")
        for call in msg.tool_calls:
            check(isinstance(call["args"], dict), "tool call arguments are not an object")
        return f"{len(msg.tool_calls)} tool calls"

    def embeddings(self) -> str:
        from langchain_ollama import OllamaEmbeddings

        emb = OllamaEmbeddings(model=self.target.embed_model(), base_url=self.config.url)
        one = emb.embed_query("Why is the sky blue?")
        many = emb.embed_documents(["Hello", "World"])
        check(one and len(many) == 2 and len(many[0]) == len(one), "embedding sizes disagree")
        return f"{len(one)} dimensions"


def cases(config: Config, target: Target) -> list[Case]:
    try:
        import langchain_ollama  # noqa: F401
    except ImportError:
        return [skipped(CLIENT, "import", "langchain-ollama is not installed (pip install langchain-ollama)")]
    return LangChainCases(config, target).cases()
