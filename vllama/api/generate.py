"""/api/generate and /api/chat: Ollama requests -> engine completions -> NDJSON or one JSON object."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine.base import Chunk, Completion, EngineError, InvalidRequest
from ..engine.parsers import THINK_OPEN, ThinkingSplitter, tool_parser_name
from ..engine.scheduler import ServerBusy
from ..engine.options import OptionError, max_new_tokens, parse_options, sampling_kwargs
from ..models.names import InvalidName
from ..models.store import ModelNotFound
from .disconnect import until_disconnect
from .errors import APIError, json_response, read_json
from .schemas import ChatRequest, CommonRequest, GenerateRequest, parse_chat, parse_generate
from .replies import ReplyShape, ReplyWriter, aggregate
from .streaming import ndjson_response, rfc3339_now

NUM_KEEP = 4  # Ollama keeps the first tokens of a prompt it has to truncate


class Job:
    """One generate/chat request from arrival to its last chunk: holds the loaded model while it runs."""

    def __init__(self, request: Request, req: CommonRequest):
        self.request = request
        self.req = req
        self.arrived = time.perf_counter_ns()
        self.state = request.app.state
        self.entry: Any = None
        self.load_duration = 0

    def resolve(self) -> Any:
        if not self.req.model:
            return None
        try:
            return self.state.store.get(self.req.model)
        except InvalidName:
            raise APIError(400, "invalid model name") from None
        except ModelNotFound:
            raise APIError(404, f"model '{self.req.model}' not found") from None

    async def load(self, model: Any) -> None:
        try:
            self.entry = await self.state.scheduler.acquire(model.name.lower(), model, self.req.keep_alive)
        except ServerBusy as err:
            raise APIError(503, str(err)) from None
        except EngineError as err:
            raise APIError(500, str(err)) from None
        self.load_duration = max(time.perf_counter_ns() - self.arrived, 1)

    def release(self) -> None:
        if self.entry is not None:
            self.state.scheduler.release(self.entry)
            self.entry = None

    def completion(self, prompt_ids: list[int]) -> Completion:
        runner = self.entry.runner
        try:
            opts = parse_options(self.req.options, overrides=getattr(self.entry.model, "parameters", None))
        except OptionError as err:
            raise APIError(400, str(err)) from None
        ctx = min(opts.num_ctx or runner.context_length, runner.context_length)
        prompt_ids = self._fit(prompt_ids, ctx, opts["num_predict"])
        sampling = sampling_kwargs(opts, max_new_tokens(opts["num_predict"], len(prompt_ids), ctx))
        fmt = self.req.format
        wants_logprobs = self.req.logprobs or self.req.top_logprobs > 0
        return Completion(prompt_ids, sampling, json_schema=fmt if isinstance(fmt, dict) and fmt else None,
                          want_json=fmt is not None,
                          logprobs=self.req.top_logprobs if wants_logprobs else None)

    def _fit(self, ids: list[int], ctx: int, num_predict: int) -> list[int]:
        if len(ids) < ctx:
            return ids
        if not self.req.truncate:
            raise APIError(400, "the input length exceeds the context length")
        # Keep the head (BOS, system) and the most recent tail, leaving room to answer.
        room = min(num_predict if num_predict > 0 else ctx // 4, ctx // 2)
        budget = max(ctx - room, 1)  # a tiny num_ctx still leaves one prompt token, never a negative slice
        keep = min(NUM_KEEP, budget - 1)
        return ids[:keep] + ids[-(budget - keep):]

    def final_fields(self, last: Chunk) -> dict[str, Any]:
        return {
            "done_reason": last.done_reason,
            "total_duration": max(time.perf_counter_ns() - self.arrived, 1),
            "load_duration": self.load_duration,
            "prompt_eval_count": last.prompt_eval_count,
            "prompt_eval_duration": last.prompt_eval_duration,
            "eval_count": last.eval_count,
            "eval_duration": last.eval_duration,
        }


def _reply_stream(job: Job, chunks: AsyncIterator[Chunk], shape: ReplyShape) -> AsyncIterator[dict[str, Any]]:
    writer = ReplyWriter(shape)

    async def gen() -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in chunks:
                for piece in writer.feed(chunk):
                    yield piece
                if chunk.done:
                    yield writer.final(job.final_fields(chunk))
        except EngineError as err:
            raise APIError(500, str(err)) from err
        except InvalidRequest as err:
            raise APIError(400, str(err)) from err
        finally:
            job.release()

    return gen()


def _load_answer(req: CommonRequest, reason: str, is_chat: bool) -> Response:
    body: dict[str, Any] = {"model": req.model, "created_at": rfc3339_now()}
    if is_chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    body.update(done=True, done_reason=reason)
    return json_response(body)


def _resolve(job: Job, is_chat: bool, check: bool = True) -> Any:
    model = job.resolve()
    if model is None:
        if is_chat:
            raise APIError(400, "model is required")
        raise APIError(404, "model '' not found")
    if check:
        _check_capabilities(job.req, model, is_chat)
    return model


async def open_stream(request: Request, req: CommonRequest, is_chat: bool) -> AsyncIterator[dict[str, Any]]:
    """Ollama-native chunks for a generate/chat request with a prompt. Everything a client can get
    wrong raises APIError here, before the engine sees the request; the OpenAI layer reuses this."""
    job = Job(request, req)
    model = _resolve(job, is_chat)
    await job.load(model)
    try:
        runner = job.entry.runner
        can_think = "thinking" in model.capabilities
        template_kwargs = {"enable_thinking": req.think is not False} if can_think else {}
        prompt = _render(runner, req, template_kwargs)
        prompt_ids = _tokenize(runner, req, prompt)
        completion = job.completion(prompt_ids)
        chunks = runner.complete(completion)
    except BaseException:
        job.release()
        raise
    tools = req.tools if isinstance(req, ChatRequest) else []
    shape = ReplyShape(
        model=req.model, is_chat=is_chat,
        context_prefix=completion.prompt_ids if isinstance(req, GenerateRequest) and not req.raw else None,
        thinking=ThinkingSplitter(opened=prompt.rstrip().endswith(THINK_OPEN)) if can_think else None,
        hide_thinking=req.think is False,
        tool_parser=tool_parser_name(getattr(runner, "chat_template", "")) if tools else None,
        tools=tools, tokenizer=getattr(runner, "tokenizer", None),
    )
    return _reply_stream(job, chunks, shape)


async def _run(request: Request, req: CommonRequest, is_chat: bool) -> Response:
    empty = not req.messages if isinstance(req, ChatRequest) else not (req.prompt or req.context)
    if empty:  # Ollama's load / unload shortcuts
        job = Job(request, req)
        model = _resolve(job, is_chat, check=req.keep_alive != 0)  # any model can be unloaded
        if req.keep_alive == 0:
            await job.state.scheduler.unload(model.name.lower())
            return _load_answer(req, "unload", is_chat)
        await job.load(model)
        job.release()
        return _load_answer(req, "load", is_chat)
    stream = await open_stream(request, req, is_chat)
    if req.stream:
        return await ndjson_response(stream)
    return json_response(await aggregate(stream, is_chat))


def _render(runner: Any, req: CommonRequest, template_kwargs: dict[str, Any]) -> str:
    """The prompt text: the model's chat template, or the raw prompt."""
    if isinstance(req, GenerateRequest) and req.raw:
        return req.prompt
    if isinstance(req, ChatRequest):
        messages, tools = [_template_message(m) for m in req.messages], req.tools or None
    else:
        messages = [{"role": "system", "content": req.system}] if req.system else []
        messages.append({"role": "user", "content": req.prompt})
        tools = None
    try:
        return runner.render_chat(messages, tools, **template_kwargs)
    except Exception as err:  # a template that rejects the conversation (e.g. roles out of order)
        raise APIError(400, f"failed to render prompt: {err}") from err


def _template_message(message: dict[str, Any]) -> dict[str, Any]:
    """Ollama's message fields under the names Hugging Face templates read."""
    out = dict(message)
    if "tool_name" in out:
        out.setdefault("name", out["tool_name"])
    if "thinking" in out:
        out.setdefault("reasoning_content", out["thinking"])
    return out


def _tokenize(runner: Any, req: CommonRequest, prompt: str) -> list[int]:
    context = req.context if isinstance(req, GenerateRequest) else []
    return context + runner.tokenize(prompt)


def _check_capabilities(req: CommonRequest, model: Any, is_chat: bool) -> None:
    caps = set(getattr(model, "capabilities", None) or ["completion"])
    if "completion" not in caps:
        raise APIError(400, f'"{req.model}" does not support {"chat" if is_chat else "generate"}')
    full_name = getattr(model, "model_name", model.name)  # Ollama names the model in full here
    if isinstance(req, GenerateRequest) and req.suffix and "insert" not in caps:
        raise APIError(400, f"{full_name} does not support insert")
    if isinstance(req, ChatRequest) and req.tools and "tools" not in caps:
        raise APIError(400, f"{full_name} does not support tools")
    if req.think and "thinking" not in caps:
        raise APIError(400, f'"{req.model}" does not support thinking')


async def generate(request: Request) -> Response:
    body = await read_json(request)
    req = parse_generate(body, request.app.state.default_keep_alive)
    return await until_disconnect(request, _run(request, req, is_chat=False))


async def chat(request: Request) -> Response:
    body = await read_json(request)
    req = parse_chat(body, request.app.state.default_keep_alive)
    return await until_disconnect(request, _run(request, req, is_chat=True))
