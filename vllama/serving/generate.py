"""Generate and chat, whatever the dialect: resolve the model, check what it can do, load it, render
the prompt, tokenise, complete, and yield typed events.

Everything a client can get wrong is raised (as a `ServingError`) before the first event, so the
API can still answer it with a status code; after that, errors end the event stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from ..engine.base import Completion, EngineError, InvalidRequest, ModelRecord, Runner
from ..engine.options import OptionError, max_new_tokens, parse_options, sampling_kwargs
from ..engine.scheduler import Loaded, ServerBusy
from ..models.names import InvalidName
from ..models.store import ModelNotFound
from .context import ServingContext
from .errors import BadRequest, Busy, Failed, NotFound
from .events import Delta, Done, Event, Metrics
from .prompt import render
from .images import check_images, request_images
from .replies import ReplyWriter, reply_shape
from .requests import ChatRequest, CommonRequest, GenerateRequest

log = logging.getLogger("vllama.serving")

NUM_KEEP = 4  # Ollama keeps the first tokens of a prompt it has to truncate


def weights_of(model: ModelRecord) -> str:
    """What an engine loads, whatever the name: names that share weights (created FROM, copied,
    /save'd) share one engine, their SYSTEM/MESSAGE/PARAMETER applied per request, as Ollama keys
    its runners by model path."""
    if model.gguf is not None:
        return str(model.path)  # the folder converted from the GGUF, one per GGUF digest
    if model.files:  # the files a vllama manifest lists: the weights, config and tokenizer
        listed = "\n".join(sorted(f"{f['path']} {f['digest']}" for f in model.files))
        return "sha256:" + hashlib.sha256(listed.encode()).hexdigest()
    return model.name.lower()


def engine_key(model: ModelRecord) -> str:
    """The scheduler's key for the engine a request needs: a generation model embedding (on the
    pooling runner) is a second engine for the same weights, keyed apart from its generation one."""
    return weights_of(model) + ("#embed" if model.for_embedding else "")


def wanted_context(req: CommonRequest, model: ModelRecord) -> int:
    """The engine context a request asks for (0: the default): its num_ctx, at most the model's
    trained context, past which Ollama caps it with a warning (llm/server.go)."""
    from ..models.info import trained_context

    try:
        num_ctx = parse_options(req.options, overrides=model.parameters).num_ctx
    except OptionError as err:
        raise BadRequest(str(err)) from None
    limit = trained_context(model.config)  # a vision-language model's is under text_config
    if not num_ctx or limit is None:
        return 0
    if num_ctx > limit:
        log.warning("requested context size too large for model: num_ctx %d, n_ctx_train %d", num_ctx, limit)
    return min(num_ctx, limit)


class Job:
    """One request from arrival to its last event: holds the loaded model while it runs."""

    def __init__(self, ctx: ServingContext, model: str, keep_alive: float):
        self.ctx = ctx
        self.model = model  # as the client wrote it
        self.keep_alive = keep_alive
        self.arrived = time.perf_counter_ns()
        self.entry: Loaded | None = None
        self.load_duration = 0

    async def resolve(self) -> ModelRecord | None:
        """The store's record for the name (None for no name); read in a thread, off the loop."""
        if not self.model:
            return None
        try:
            return await asyncio.to_thread(self.ctx.store.get, self.model)
        except InvalidName:
            raise BadRequest("invalid model name") from None
        except ModelNotFound:
            raise NotFound(f"model '{self.model}' not found") from None

    async def load(self, model: ModelRecord, context: int = 0) -> Loaded:
        try:
            self.entry = await self.ctx.scheduler.acquire(engine_key(model), model, self.keep_alive,
                                                          identity=weights_of(model), context=context)
        except ServerBusy as err:
            raise Busy(str(err)) from None
        except EngineError as err:
            raise Failed(str(err)) from None
        self.load_duration = max(time.perf_counter_ns() - self.arrived, 1)
        return self.entry

    def release(self) -> None:
        if self.entry is not None:
            self.ctx.scheduler.release(self.entry)
            self.entry = None

    def elapsed(self) -> int:
        return max(time.perf_counter_ns() - self.arrived, 1)


def check_capabilities(req: CommonRequest, model: ModelRecord) -> None:
    is_chat = isinstance(req, ChatRequest)
    caps = set(model.capabilities or ["completion"])
    if "completion" not in caps:
        raise BadRequest(f'"{req.model}" does not support {"chat" if is_chat else "generate"}')
    full_name = model.model_name  # Ollama names the model in full here
    if isinstance(req, GenerateRequest) and req.suffix and "insert" not in caps:
        raise BadRequest(f"{full_name} does not support insert")
    if isinstance(req, ChatRequest) and req.tools and "tools" not in caps:
        raise BadRequest(f"{full_name} does not support tools")
    if req.think and "thinking" not in caps:
        raise BadRequest(f'"{req.model}" does not support thinking')


async def _model(job: Job, req: CommonRequest, check: bool = True) -> ModelRecord:
    model = await job.resolve()
    if model is None:
        if isinstance(req, ChatRequest):
            raise BadRequest("model is required")
        raise NotFound("model '' not found")
    if check:
        check_capabilities(req, model)
    return model


async def load_only(ctx: ServingContext, req: CommonRequest, *, may_unload: bool = True) -> Done:
    """Ollama's answer to an empty prompt or conversation: load the model (or, with keep_alive 0
    and `may_unload`, unload it, whatever its capabilities)."""
    job = Job(ctx, req.model, req.keep_alive)
    unload = may_unload and req.keep_alive == 0
    model = await _model(job, req, check=not unload)
    if unload:
        await ctx.scheduler.unload(engine_key(model))
        # and the engine its embeddings run on, if any: Ollama's one runner serves both
        await ctx.scheduler.unload(engine_key(model.embedding_view()))
        return Done("unload")
    await job.load(model)
    job.release()
    return Done("load")


def _template_kwargs(req: CommonRequest, model: ModelRecord) -> dict[str, Any]:
    if "thinking" not in model.capabilities:
        return {}
    kwargs: dict[str, Any] = {"enable_thinking": req.think is not False}
    if isinstance(req.think, str):  # a think level: templates that take one read `reasoning_effort`
        kwargs["reasoning_effort"] = req.think
    return kwargs


def _num_ctx(req: CommonRequest, model: ModelRecord, runner: Runner) -> int:
    """The context this request is served in: its num_ctx (or the Modelfile's), at most the engine's."""
    try:
        opts = parse_options(req.options, overrides=model.parameters)
    except OptionError as err:
        raise BadRequest(str(err)) from None
    return min(opts.num_ctx or runner.context_length, runner.context_length)


def fit(ids: list[int], ctx: int, num_predict: int, truncate: bool) -> list[int]:
    """The prompt cut to the context, as Ollama cuts it; BadRequest when `truncate` is off."""
    if len(ids) < ctx:
        return ids
    if not truncate:
        raise BadRequest("the input length exceeds the context length")
    # Keep the head (BOS, system) and the most recent tail, leaving room to answer.
    room = min(num_predict if num_predict > 0 else ctx // 4, ctx // 2)
    budget = max(ctx - room, 1)  # a tiny num_ctx still leaves one prompt token, never a negative slice
    keep = min(NUM_KEEP, budget - 1)
    return ids[:keep] + ids[-(budget - keep):]


def completion(req: CommonRequest, model: ModelRecord, runner: Runner, prompt_ids: list[int]) -> Completion:
    check_images(req, set(model.capabilities))  # as Ollama's runner: at completion, not at render
    try:
        opts = parse_options(req.options, overrides=model.parameters)
    except OptionError as err:
        raise BadRequest(str(err)) from None
    ctx = min(opts.num_ctx or runner.context_length, runner.context_length)
    prompt_ids = fit(prompt_ids, ctx, opts["num_predict"], req.truncate)
    sampling = sampling_kwargs(opts, max_new_tokens(opts["num_predict"], len(prompt_ids), ctx))
    fmt = req.format
    wants_logprobs = req.logprobs or req.top_logprobs > 0
    return Completion(prompt_ids, sampling, json_schema=fmt if isinstance(fmt, dict) and fmt else None,
                      want_json=fmt is not None,
                      logprobs=req.top_logprobs if wants_logprobs else None, images=request_images(req))


async def generate(ctx: ServingContext, req: CommonRequest) -> AsyncIterator[Event]:
    """The events of a generate or chat request with a prompt: deltas, then one `Done`."""
    job = Job(ctx, req.model, req.keep_alive)
    model = await _model(job, req)
    entry = await job.load(model, wanted_context(req, model))
    try:
        # The scheduler starts a Runner for every model that passed the capability check.
        runner = cast(Runner, entry.runner)
        can_think = "thinking" in model.capabilities
        # Rendering and tokenising take milliseconds of CPU: off the event loop, which serves others.
        prompt = await asyncio.to_thread(render, runner, req, model, _template_kwargs(req, model),
                                         _num_ctx(req, model, runner))
        context = req.context if isinstance(req, GenerateRequest) else []
        prompt_ids = context + await asyncio.to_thread(runner.tokenize, prompt)
        request = completion(req, model, runner, prompt_ids)
        tools = req.tools if isinstance(req, ChatRequest) else []
        writer = ReplyWriter(reply_shape(
            can_think=can_think, hide_thinking=req.think is False, model_type=str(model.config.get("model_type", "")),
            tools=tools, chat_template=runner.chat_template, tokenizer=runner.tokenizer, prompt=prompt,
            prompt_ids=prompt_ids, formatted=req.format is not None))
        request.thinks_first = writer.shape.thinks_first  # `format` after the thought, as the reply is read
        keeps_context = isinstance(req, GenerateRequest) and not req.raw
        async for chunk in runner.complete(request):
            for delta in writer.feed(chunk):
                yield delta
            if chunk.done:
                yield Done(
                    reason=chunk.done_reason or "stop",
                    metrics=Metrics(job.elapsed(), job.load_duration, chunk.prompt_eval_count,
                                    chunk.prompt_eval_duration, chunk.eval_count, chunk.eval_duration),
                    context=request.prompt_ids + writer.output if keeps_context else None,
                )
    except EngineError as err:
        raise Failed(str(err)) from err
    except InvalidRequest as err:
        raise BadRequest(str(err)) from err
    finally:
        job.release()


# -- Ollama's `_debug_render_only`: the prompt the engine would get, and nothing run -------------

async def rendered_prompt(ctx: ServingContext, req: CommonRequest) -> str:
    """The prompt `generate` would complete for this request (the model is loaded, as Ollama loads
    it first: its tokenizer holds the template)."""
    job = Job(ctx, req.model, req.keep_alive)
    model = await _model(job, req)
    entry = await job.load(model)
    try:
        runner = cast(Runner, entry.runner)
        return await asyncio.to_thread(render, runner, req, model, _template_kwargs(req, model),
                                       _num_ctx(req, model, runner))
    finally:
        job.release()


__all__ = ["Delta", "Done", "Job", "check_capabilities", "generate", "load_only", "rendered_prompt"]
