"""The PyPI `ollama` client, sync and async, driven through its public API only."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from . import checks
from .core import UNKNOWN_MODEL, Case, Config, Skip, Target, check, skipped

SYNC, ASYNC = "ollama-python", "ollama-python-async"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
# A schema a small model fills in a few tokens: grammar-constrained output stays short.
YES_NO = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}
JSON_TOKENS = 32  # enough for {"answer": true} with the whitespace a model may add
JSON_PROMPT = 'Reply with the JSON object {"answer": true} if the sky is blue.'


def dump(obj: Any) -> dict[str, Any]:
    """A client model as the JSON the server sent (field aliases such as model_info kept)."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


def expect_error(call: Callable[[], Any], status: int, text: str) -> str:
    import ollama

    try:
        call()
    except ollama.ResponseError as err:
        checks.error(err.status_code, err.error, status, text)
        return f"ResponseError {err.status_code}: {err.error}"
    raise AssertionError(f"no ResponseError (expected {status} {text!r})")


def json_answer(text: str, done_reason: str | None) -> Any:
    """The JSON a `format` request produced (a cut-off answer cannot be judged)."""
    if done_reason == "length":
        raise Skip(f"the answer hit num_predict before the JSON closed: {text!r:.60}")
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"format output is not JSON: {text!r:.80}") from None


def scratch_name(what: str) -> str:
    return f"compat-{os.getpid()}-{what}"


class SyncCases:
    def __init__(self, config: Config, target: Target):
        import ollama

        self.config, self.target = config, target
        self.model = config.model
        self.client = ollama.Client(host=config.url, timeout=config.timeout)

    def opts(self, **extra: Any) -> dict[str, Any]:
        return self.target.options(**extra)

    def cases(self) -> list[Case]:
        c = lambda name, fn, **kw: Case(SYNC, name, fn, **kw)  # noqa: E731
        return [
            c("list", self.list),
            c("show", self.show),
            c("generate", self.generate),
            c("generate-stream", self.generate_stream),
            c("chat", self.chat),
            c("chat-stream", self.chat_stream),
            c("chat-history-and-system", self.chat_history),
            c("generate-raw", self.generate_raw),
            c("ps", self.ps),
            c("keep-alive-10m", self.keep_alive),
            c("options-num-predict-and-stop", self.options_limits),
            c("options-seed-repeats", self.options_seed),
            c("options-object", self.options_object),
            c("format-json", self.format_json),
            c("format-schema-chat", self.format_schema),
            c("tools", self.tools),
            c("tools-unsupported-400", self.tools_unsupported),
            c("think-unsupported-400", self.think_unsupported),
            c("embed", self.embed),
            c("embed-batch", self.embed_batch),
            c("embeddings-legacy", self.embeddings),
            c("copy-show-delete", self.copy_show_delete),
            c("create-from-model", self.create),
            c("create-stream", self.create_stream),
            c("pull-unknown-404ish", self.pull_unknown),
            c("pull-unknown-stream", self.pull_unknown_stream),
            c("pull", self.pull),
            c("error-generate-unknown-model", lambda: expect_error(
                lambda: self.client.generate(model=UNKNOWN_MODEL, prompt="hi"), 404,
                f"model '{UNKNOWN_MODEL}' not found")),
            c("error-chat-unknown-model", lambda: expect_error(
                lambda: self.client.chat(model=UNKNOWN_MODEL, messages=[{"role": "user", "content": "hi"}]), 404,
                f"model '{UNKNOWN_MODEL}' not found")),
            c("error-chat-stream-unknown-model", lambda: expect_error(
                lambda: list(self.client.chat(model=UNKNOWN_MODEL, messages=[{"role": "user", "content": "hi"}],
                                              stream=True)), 404, "not found")),
            c("error-show-unknown-model", lambda: expect_error(
                lambda: self.client.show(UNKNOWN_MODEL), 404, "not found")),
            c("error-delete-unknown-model", lambda: expect_error(
                lambda: self.client.delete(UNKNOWN_MODEL), 404, "not found")),
            c("error-copy-unknown-model", lambda: expect_error(
                lambda: self.client.copy(UNKNOWN_MODEL, scratch_name("never")), 404, "not found")),
            c("error-option-type-400", lambda: expect_error(
                lambda: self.client.generate(model=self.model, prompt="hi", options={"temperature": "hot"}), 400,
                'option "temperature"'), known="KD-1"),
            c("error-keep-alive-unitless-400", lambda: expect_error(
                lambda: self.client.generate(model=self.model, prompt="hi", keep_alive="300"), 400,
                "missing unit in duration")),
            c("error-invalid-think-400", lambda: expect_error(
                lambda: self.client.chat(model=self.model, messages=[{"role": "user", "content": "hi"}], think="x"),
                400, "invalid think value")),
            c("embed-generation-model", self.embed_with_generation_model),
        ]

    # -- listing ---------------------------------------------------------------------------------

    def list(self) -> str:
        r = self.client.list()
        checks.tags(dump(r), self.model)
        return f"{len(r.models)} models"

    def show(self) -> str:
        r = self.client.show(self.model)
        checks.show(dump(r))
        check(r.modelinfo, "ShowResponse.modelinfo is empty")
        return "capabilities " + ", ".join(r.capabilities or [])

    def ps(self) -> str:
        self.client.generate(model=self.model, prompt="Hi", options=self.opts(num_predict=1))
        entry = checks.ps(dump(self.client.ps()), self.model)
        return f"size {entry['size']}, expires {entry['expires_at']}"

    # -- generation ------------------------------------------------------------------------------

    def generate(self) -> str:
        r = self.client.generate(model=self.model, prompt="Why is the sky blue?", options=self.opts())
        checks.final(dump(r), chat=False)
        check(r.eval_count <= self.config.num_predict, f"eval_count {r.eval_count} > num_predict")
        return repr(r.response)

    def generate_stream(self) -> str:
        chunks = [dump(c) for c in self.client.generate(model=self.model, prompt="Why is the sky blue?",
                                                        options=self.opts(), stream=True)]
        return f"{len(chunks)} chunks: " + repr(checks.stream(chunks, chat=False))

    def chat(self) -> str:
        r = self.client.chat(model=self.model, messages=[{"role": "user", "content": "Why is the sky blue?"}],
                             options=self.opts())
        checks.final(dump(r), chat=True)
        return repr(r.message.content)

    def chat_stream(self) -> str:
        chunks = [dump(c) for c in self.client.chat(
            model=self.model, messages=[{"role": "user", "content": "Why is the sky blue?"}], options=self.opts(),
            stream=True)]
        return f"{len(chunks)} chunks: " + repr(checks.stream(chunks, chat=True))

    def chat_history(self) -> str:
        messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a color."}]
        short = self.client.chat(model=self.model, messages=messages[-1:], options=self.opts(num_predict=1))
        r = self.client.chat(model=self.model, messages=messages, options=self.opts())
        checks.final(dump(r), chat=True)
        check(r.prompt_eval_count > short.prompt_eval_count, "the history did not reach the prompt")
        return repr(r.message.content)

    def generate_raw(self) -> str:
        r = self.client.generate(model=self.model, prompt="The capital of France is", raw=True, options=self.opts())
        checks.final(dump(r), chat=False, raw=True)
        return repr(r.response)

    def keep_alive(self) -> str:
        self.client.generate(model=self.model, prompt="Hi", keep_alive="10m", options=self.opts(num_predict=1))
        entry = checks.ps(dump(self.client.ps()), self.model)
        expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
        left = expires - datetime.now(timezone.utc)
        check(timedelta(minutes=9) < left <= timedelta(minutes=10, seconds=5), f"expires in {left}")
        return f"expires in {left.total_seconds():.0f}s"

    def options_limits(self) -> str:
        r = self.client.generate(model=self.model, prompt="Count: 1, 2, 3,", raw=True,
                                 options=self.opts(num_predict=3))
        check(r.eval_count <= 3 and r.done_reason == "length", f"eval_count {r.eval_count}, {r.done_reason}")
        stop = self.client.generate(model=self.model, prompt="Count: 1, 2, 3,", raw=True,
                                    options=self.opts(num_predict=self.config.num_predict, stop=[","]))
        check("," not in stop.response, f"stop sequence in the answer: {stop.response!r}")
        return f"{r.response!r} / stop: {stop.response!r}"

    def options_seed(self) -> str:
        opts = self.opts(temperature=1.0, seed=42, top_k=1000, top_p=1.0)
        a = self.client.generate(model=self.model, prompt="Tell me a story.", options=opts)
        b = self.client.generate(model=self.model, prompt="Tell me a story.", options=opts)
        check(a.response == b.response, f"same seed, different text: {a.response!r} / {b.response!r}")
        return repr(a.response)

    def options_object(self) -> str:
        import ollama

        # ollama.Options, and the keys clients still send that Ollama retired (mirostat, tfs_z ...)
        r = self.client.chat(model=self.model, messages=[{"role": "user", "content": "Hi"}],
                             options=ollama.Options(num_predict=self.config.num_predict, temperature=0, seed=1,
                                                    repeat_penalty=1.0, top_k=40, top_p=0.9, num_ctx=2048,
                                                    mirostat=0, tfs_z=1.0, penalize_newline=False))
        checks.final(dump(r), chat=True)
        return repr(r.message.content)

    def format_json(self) -> str:
        r = self.client.generate(model=self.model, prompt=JSON_PROMPT,
                                 format="json", options=self.opts(num_predict=JSON_TOKENS))
        checks.final(dump(r), chat=False)
        value = json_answer(r.response, r.done_reason)
        check(isinstance(value, dict), f"format json gave {value!r}")
        return r.response

    def format_schema(self) -> str:
        r = self.client.chat(model=self.model, messages=[{"role": "user", "content": "Is the sky blue?"}],
                             format=YES_NO, options=self.opts(num_predict=JSON_TOKENS))
        value = json_answer(r.message.content, r.done_reason)
        check(isinstance(value, dict) and isinstance(value.get("answer"), bool), f"schema not followed: {value!r}")
        return r.message.content

    def tools(self) -> str:
        self.target.require("tools")
        r = self.client.chat(model=self.model, messages=[{"role": "user", "content": "Weather in Paris?"}],
                             tools=[WEATHER_TOOL], options=self.opts(num_predict=48))
        checks.final(dump(r), chat=True)
        for call in r.message.tool_calls or []:
            check(isinstance(call.function.arguments, dict), "tool call arguments are not an object")
        return f"{len(r.message.tool_calls or [])} tool calls"

    def tools_unsupported(self) -> str:
        if "tools" in self.target.capabilities(self.model):
            raise Skip(f"{self.model} supports tools")
        return expect_error(lambda: self.client.chat(
            model=self.model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL]),
            400, "does not support tools")

    def think_unsupported(self) -> str:
        if "thinking" in self.target.capabilities(self.model):
            raise Skip(f"{self.model} supports thinking")
        return expect_error(lambda: self.client.chat(
            model=self.model, messages=[{"role": "user", "content": "Hi"}], think=True), 400,
            "does not support thinking")

    # -- embeddings ------------------------------------------------------------------------------

    def embed(self) -> str:
        model = self.target.embed_model()
        r = self.client.embed(model=model, input="Why is the sky blue?")
        checks.embed(dump(r), 1)
        return f"{len(r.embeddings[0])} dimensions"

    def embed_batch(self) -> str:
        model = self.target.embed_model()
        r = self.client.embed(model=model, input=["Why is the sky blue?", "Hello"], keep_alive="5m")
        checks.embed(dump(r), 2)
        check(r.embeddings[0] != r.embeddings[1], "two inputs, one vector")
        return f"{len(r.embeddings)} vectors"

    def embeddings(self) -> str:
        model = self.target.embed_model()
        r = self.client.embeddings(model=model, prompt="Why is the sky blue?")
        check(r.embedding and all(isinstance(x, float) for x in r.embedding), "no embedding")
        return f"{len(r.embedding)} dimensions"

    def embed_with_generation_model(self) -> str:
        if "embedding" in self.target.capabilities(self.model):
            raise Skip(f"{self.model} is an embedding model")
        vectors = self.client.embed(model=self.model, input="hi").embeddings  # Ollama embeds with any model
        if len(vectors) != 1 or abs(sum(x * x for x in vectors[0]) - 1) > 1e-3:
            raise AssertionError(f"expected one unit vector, got {len(vectors)} vectors")
        return f"{len(vectors[0])} dimensions"

    # -- model management ------------------------------------------------------------------------

    def copy_show_delete(self) -> str:
        import ollama

        name = scratch_name("copy")
        check(self.client.copy(self.model, name).status == "success", "copy did not succeed")
        try:
            check(any(checks.same_model(m.model, name) for m in self.client.list().models), "copy not listed")
            checks.show(dump(self.client.show(name)))
        finally:
            check(self.client.delete(name).status == "success", "delete did not succeed")
        try:
            self.client.show(name)
        except ollama.ResponseError as err:
            check(err.status_code == 404, f"show after delete: {err.status_code}")
        else:
            raise AssertionError("the deleted copy is still shown")
        return name

    def create(self) -> str:
        name = scratch_name("created")
        r = self.client.create(model=name, from_=self.model, system="You are terse.",
                               parameters={"num_predict": 4, "stop": ["\n\n"]})
        try:
            check(r.status == "success", f"create: {r.status}")
            shown = self.client.show(name)
            check("num_predict" in (shown.parameters or ""), f"parameters not shown: {shown.parameters!r}")
            check("SYSTEM You are terse." in (shown.modelfile or ""), "the system prompt is not in the Modelfile")
        finally:
            self.client.delete(name)
        return name

    def create_stream(self) -> str:
        name = scratch_name("streamed")
        try:
            events = [e.status for e in self.client.create(model=name, from_=self.model, stream=True)]
        finally:
            try:
                self.client.delete(name)
            except Exception:  # noqa: BLE001 - the case reports what went wrong above
                pass
        check(events and events[-1] == "success", f"the stream ends with {events[-1:]}")
        return " > ".join(events[-3:])

    def pull_unknown(self) -> str:
        import ollama

        try:
            self.client.pull(UNKNOWN_MODEL)
        except ollama.ResponseError as err:
            check("file does not exist" in err.error or "not found" in err.error, f"error {err.error!r}")
            return f"ResponseError {err.status_code}: {err.error}"
        raise AssertionError("pulling an unknown model did not raise ResponseError")

    def pull_unknown_stream(self) -> str:
        import ollama

        seen = []
        try:
            for event in self.client.pull(UNKNOWN_MODEL, stream=True):
                seen.append(event.status)
        except ollama.ResponseError as err:
            check("file does not exist" in err.error or "not found" in err.error, f"error {err.error!r}")
            return f"after {seen}: ResponseError {err.status_code}: {err.error}"
        raise AssertionError(f"the pull stream ended without an error: {seen}")

    def pull(self) -> str:
        if not self.config.pull_model:
            raise Skip("pulling for real needs the registry: pass --pull-model NAME")
        events = [e for e in self.client.pull(self.config.pull_model, stream=True)]
        check(events and events[-1].status == "success", f"the pull ends with {events[-1:]}")
        return f"{len(events)} progress events"


class AsyncCases:
    """The same client's AsyncClient: the calls an asyncio application makes, and several at once."""

    def __init__(self, config: Config, target: Target):
        self.config, self.target, self.model = config, target, config.model

    def run(self, make: Callable[[Any], Any]) -> Any:
        import ollama

        async def go() -> Any:
            client = ollama.AsyncClient(host=self.config.url, timeout=self.config.timeout)
            return await make(client)

        return asyncio.run(go())

    def cases(self) -> list[Case]:
        c = lambda name, fn, **kw: Case(ASYNC, name, fn, **kw)  # noqa: E731
        return [
            c("list", self.list),
            c("show", lambda: checks.show(dump(self.run(lambda cl: cl.show(self.model))))),
            c("ps", lambda: checks.ps(dump(self.run(lambda cl: cl.ps())), self.model)["expires_at"]),
            c("generate", self.generate),
            c("generate-stream", self.generate_stream),
            c("chat", self.chat),
            c("chat-stream", self.chat_stream),
            c("chat-concurrent", self.concurrent),
            c("embed", self.embed),
            c("error-chat-unknown-model", self.unknown),
        ]

    def list(self) -> str:
        r = self.run(lambda cl: cl.list())
        checks.tags(dump(r), self.model)
        return f"{len(r.models)} models"

    def generate(self) -> str:
        r = self.run(lambda cl: cl.generate(model=self.model, prompt="Why is the sky blue?",
                                            options=self.target.options(), keep_alive=600))
        checks.final(dump(r), chat=False)
        return repr(r.response)

    def generate_stream(self) -> str:
        async def go(cl: Any) -> list[dict[str, Any]]:
            return [dump(c) async for c in await cl.generate(model=self.model, prompt="Why is the sky blue?",
                                                             options=self.target.options(), stream=True)]
        chunks = self.run(go)
        return f"{len(chunks)} chunks: " + repr(checks.stream(chunks, chat=False))

    def chat(self) -> str:
        r = self.run(lambda cl: cl.chat(model=self.model, messages=[{"role": "user", "content": "Hi"}],
                                        options=self.target.options()))
        checks.final(dump(r), chat=True)
        return repr(r.message.content)

    def chat_stream(self) -> str:
        async def go(cl: Any) -> list[dict[str, Any]]:
            return [dump(c) async for c in await cl.chat(model=self.model, messages=[{"role": "user", "content": "Hi"}],
                                                         options=self.target.options(), stream=True)]
        chunks = self.run(go)
        return f"{len(chunks)} chunks: " + repr(checks.stream(chunks, chat=True))

    def concurrent(self) -> str:
        questions = ["Why is the sky blue?", "Name a color.", "What is 2+2?", "Say hello."]

        async def go(cl: Any) -> list[Any]:
            return await asyncio.gather(*(cl.chat(model=self.model, messages=[{"role": "user", "content": q}],
                                                  options=self.target.options()) for q in questions))
        answers = self.run(go)
        for r in answers:
            checks.final(dump(r), chat=True)
        return f"{len(answers)} answers at once"

    def embed(self) -> str:
        model = self.target.embed_model()
        r = self.run(lambda cl: cl.embed(model=model, input=["Hello", "World"]))
        checks.embed(dump(r), 2)
        return f"{len(r.embeddings)} vectors"

    def unknown(self) -> str:
        import ollama

        try:
            self.run(lambda cl: cl.chat(model=UNKNOWN_MODEL, messages=[{"role": "user", "content": "hi"}]))
        except ollama.ResponseError as err:
            checks.error(err.status_code, err.error, 404, f"model '{UNKNOWN_MODEL}' not found")
            return f"ResponseError {err.status_code}"
        raise AssertionError("no ResponseError")


def cases(config: Config, target: Target) -> list[Case]:
    try:
        import ollama  # noqa: F401
    except ImportError:
        return [skipped(SYNC, "import", "the ollama package is not installed")]
    return SyncCases(config, target).cases() + AsyncCases(config, target).cases()
