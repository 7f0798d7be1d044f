"""Embeddings: /api/embed, the legacy /api/embeddings, and OpenAI's /v1/embeddings.

All three end in the embedding runner (vllama.engine.embedder) of the model named in the request.
Ollama's conventions: /api/embed and /v1/embeddings return L2-normalised float32 vectors (cut to
`dimensions` first, then normalised again); /api/embeddings returns the raw pooled vector. Ollama
serves embeddings from any model; vllama only from embedding models (a generative model is a 400).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import keep_alive_seconds
from ..engine.base import EngineError
from ..engine.embedder import InputTooLong
from ..engine.options import OptionError, parse_options
from .disconnect import until_disconnect
from .errors import APIError, dumps, json_response, read_json
from .errors import field as typed
from .generate import Job
from .openai import openai_errors, openai_json, read_body

ENCODING_FORMATS = ("float", "base64")


@dataclass
class EmbedRequest:
    """What the three routes share; `Job` reads `model` and `keep_alive`."""

    model: str
    keep_alive: float
    options: dict[str, Any] = field(default_factory=dict)
    truncate: bool = True
    dimensions: int = 0


def _request(body: dict[str, Any], default_keep_alive: float, *, native: bool = True) -> EmbedRequest:
    try:
        keep_alive = keep_alive_seconds(body.get("keep_alive"), default_keep_alive) if native else default_keep_alive
    except ValueError as err:
        raise APIError(400, str(err)) from None
    options = body.get("options") if native else None
    if options is not None and not isinstance(options, dict):
        raise APIError(400, "json: cannot unmarshal into Go struct field .options of type map[string]interface {}")
    return EmbedRequest(
        model=typed(body, "model", str, "").strip(),
        keep_alive=keep_alive,
        options=options or {},
        truncate=typed(body, "truncate", bool, True) if native else True,
        dimensions=typed(body, "dimensions", int, 0),
    )


def _inputs(value: Any) -> list[str]:
    """Ollama's EmbedRequest.input: a string ("" is no input), a list of strings, or absent."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise APIError(400, "invalid input type")


def _resolve(job: Job, legacy: bool) -> Any:
    name = job.req.model
    if legacy and not name:
        raise APIError(400, "model is required")
    try:
        model = job.resolve()
    except APIError as err:
        if legacy and err.status == 404:
            raise APIError(404, f'model "{name}" not found, try pulling it first') from None
        raise
    if model is None:
        raise APIError(404, "model '' not found")
    if "embedding" not in (getattr(model, "capabilities", None) or []):
        raise APIError(400, f'"{name}" does not support embeddings')
    return model


@dataclass
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int
    total_duration: int
    load_duration: int


async def _embed(request: Request, req: EmbedRequest, texts: list[str], *, normalize: bool,
                 legacy: bool = False) -> Embedded:
    """Resolve, load (also for no input: that is Ollama's way to preload), embed, release."""
    job = Job(request, req)
    model = _resolve(job, legacy)
    try:
        limit = parse_options(req.options).num_ctx
    except OptionError as err:
        raise APIError(400, str(err)) from None
    await job.load(model)
    try:
        vectors: list[list[float]] = []
        count = 0
        if texts:
            vectors, count = await job.entry.runner.embed(
                texts, req.truncate, req.dimensions if req.dimensions > 0 else None,
                normalize=normalize, limit=limit)
    except InputTooLong as err:
        raise APIError(500 if legacy else 400, str(err)) from None
    except EngineError as err:
        raise APIError(500, str(err)) from err
    except ValueError as err:  # NaN or Inf in a vector, or an input the engine refused
        raise APIError(400, str(err)) from err
    finally:
        job.release()
    return Embedded(vectors, count, max(time.perf_counter_ns() - job.arrived, 1), job.load_duration)


def float32_list(vector: list[float]) -> list[float]:
    """The values as float32 and written as briefly as float32 allows (Ollama's []float32)."""
    import numpy as np

    return [float(s) for s in map(str, np.asarray(vector, dtype=np.float32))]


def float32_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes in base64, as OpenAI's `encoding_format: base64`."""
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


# -- /api/embed -----------------------------------------------------------------------------------

async def embed(request: Request) -> Response:
    body = await read_json(request)
    req = _request(body, request.app.state.default_keep_alive)
    texts = _inputs(body.get("input"))

    async def run() -> Response:
        out = await _embed(request, req, texts, normalize=True)
        if not texts:
            return json_response({"model": req.model, "embeddings": []})
        return json_response({
            "model": req.model,
            "embeddings": [float32_list(v) for v in out.vectors],
            "total_duration": out.total_duration,
            "load_duration": out.load_duration,
            "prompt_eval_count": out.prompt_tokens,
        })

    return await until_disconnect(request, run())


# -- /api/embeddings (legacy) ---------------------------------------------------------------------

async def embeddings(request: Request) -> Response:
    body = await read_json(request)
    req = _request(body, request.app.state.default_keep_alive)
    req.truncate = False  # Ollama's legacy route hands the prompt to the runner as is
    prompt = typed(body, "prompt", str, "")

    async def run() -> Response:
        out = await _embed(request, req, [prompt] if prompt else [], normalize=False, legacy=True)
        # float64 of the float32 values, not normalised: what Ollama's []float64 field carries
        return json_response({"embedding": out.vectors[0] if out.vectors else []})

    return await until_disconnect(request, run())


# -- /v1/embeddings -------------------------------------------------------------------------------

@openai_errors
async def openai_embeddings(request: Request) -> Response:
    body = await read_body(request)
    fmt = body.get("encoding_format")
    if fmt is not None and fmt != "" and not (isinstance(fmt, str) and fmt.lower() in ENCODING_FORMATS):
        shown = fmt if isinstance(fmt, str) else dumps(fmt).decode()
        raise APIError(400, f"Invalid value for 'encoding_format' = {shown}. Supported values: ['float', 'base64'].")
    encode = float32_base64 if isinstance(fmt, str) and fmt.lower() == "base64" else float32_list
    value = body.get("input")
    if value == "":
        value = [""]
    if value is None or value == []:
        raise APIError(400, "invalid input")
    texts = _inputs(value)
    req = _request(body, request.app.state.default_keep_alive, native=False)

    async def run() -> Response:
        out = await _embed(request, req, texts, normalize=True)
        data = [{"object": "embedding", "embedding": encode(v), "index": i} for i, v in enumerate(out.vectors)]
        usage = {"prompt_tokens": out.prompt_tokens, "total_tokens": out.prompt_tokens}
        return openai_json({"object": "list", "data": data, "model": req.model, "usage": usage})

    return await until_disconnect(request, run())


ROUTES = [
    Route("/api/embed", embed, methods=["POST"]),
    Route("/api/embeddings", embeddings, methods=["POST"]),
    Route("/v1/embeddings", openai_embeddings, methods=["POST"]),
]
