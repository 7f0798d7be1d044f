"""Embeddings, whatever the route: resolve the model (any model: a generation model is loaded a
second time, on the pooling runner), load it (also for no input: that is
Ollama's way to preload), embed, release. Vectors come back as floats; each dialect encodes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from ..engine.base import Embedder, EngineError, ModelRecord
from ..engine.embedder import InputTooLong
from ..engine.options import OptionError, parse_options
from .context import ServingContext
from .errors import BadRequest, Failed, NotFound
from .generate import Job
from .requests import EmbedRequest


@dataclass
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int
    total_duration: int  # ns
    load_duration: int  # ns


async def _model(job: Job, legacy: bool) -> ModelRecord:
    name = job.model
    if legacy and not name:
        raise BadRequest("model is required")
    try:
        model = await job.resolve()
    except NotFound:
        # Both of Ollama's embedding handlers (and /v1/embeddings, which runs /api/embed's) meet a
        # missing model in scheduleRunner, whose handleScheduleError words it so.
        raise NotFound(f'model "{name}" not found, try pulling it first') from None
    if model is None:
        raise NotFound("model '' not found")
    if "embedding" in model.capabilities:
        return model
    # Ollama embeds with any model: a generation model runs on vLLM's pooling runner converted for
    # embedding (last-token pooling, as llama.cpp's is for a model without a pooling type).
    return model.embedding_view()


async def embed(ctx: ServingContext, req: EmbedRequest, texts: list[str], *, normalize: bool,
                legacy: bool = False) -> Embedded:
    """`legacy` is /api/embeddings: no name at all is a 400, and a too-long input is a 500."""
    job = Job(ctx, req.model, req.keep_alive)
    model = await _model(job, legacy)
    try:
        limit = parse_options(req.options).num_ctx
    except OptionError as err:
        raise BadRequest(str(err)) from None
    entry = await job.load(model)
    try:
        vectors: list[list[float]] = []
        count = 0
        if texts:
            # The scheduler starts an Embedder for every model with the embedding capability (which
            # the embedding view of a generation model has).
            embedder = cast(Embedder, entry.runner)
            vectors, count = await embedder.embed(
                texts, req.truncate, req.dimensions if req.dimensions > 0 else None,
                normalize=normalize, limit=limit)
    except InputTooLong as err:
        raise (Failed if legacy else BadRequest)(str(err)) from None
    except EngineError as err:
        raise Failed(str(err)) from err
    except ValueError as err:  # NaN or Inf in a vector, or an input the engine refused
        raise BadRequest(str(err)) from err
    finally:
        job.release()
    return Embedded(vectors, count, job.elapsed(), job.load_duration)
