"""Ollama's generation routes: /api/generate, /api/chat, the embedding routes, /api/ps, /api/version."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ... import OLLAMA_VERSION
from ...serving import embed as embedding
from ...serving.generate import generate, load_only, rendered_prompt
from ...serving.requests import ChatRequest, CommonRequest, is_empty
from ..disconnect import until_disconnect
from ..errors import read_json
from ..gojson import field
from ..http import json_response, serving
from . import debug_render, render, schema
from .embeddings import float32_list


async def root(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


async def version(request: Request) -> Response:
    return json_response({"version": OLLAMA_VERSION})


async def ps(request: Request) -> Response:
    return json_response({"models": [schema.ps_entry(entry) for entry in serving(request).scheduler.loaded()]})


async def _answer(request: Request, req: CommonRequest, debug_render_only: bool = False) -> Response:
    ctx = serving(request)
    is_chat = isinstance(req, ChatRequest)
    if is_empty(req):  # Ollama's load / unload shortcuts answer one object, streamed or not
        return json_response(schema.final(req.model, is_chat, await load_only(ctx, req)))
    if debug_render_only:  # the rendered prompt, one object, streamed or not
        return json_response(debug_render.answer(req, await rendered_prompt(ctx, req)))
    events = generate(ctx, req)
    if req.stream:
        return await render.ndjson_response(render.chunks(req.model, is_chat, events))
    return json_response(await render.whole(req.model, is_chat, events))


async def generate_route(request: Request) -> Response:
    body = await read_json(request)
    req = schema.parse_generate(body, serving(request).default_keep_alive)
    return await until_disconnect(request, _answer(request, req, debug_render.requested(body, schema.GENERATE)))


async def chat_route(request: Request) -> Response:
    body = await read_json(request)
    req = schema.parse_chat(body, serving(request).default_keep_alive)
    return await until_disconnect(request, _answer(request, req, debug_render.requested(body, schema.CHAT)))


async def embed_route(request: Request) -> Response:
    body = await read_json(request)
    req = schema.parse_embed(body, serving(request).default_keep_alive)
    texts = schema.embed_inputs(body.get("input"))

    async def run() -> Response:
        out = await embedding.embed(serving(request), req, texts, normalize=True)
        if not texts:
            return json_response({"model": req.model, "embeddings": []})
        return json_response(schema.embed_response(req.model, [float32_list(v) for v in out.vectors],
                                                   out.total_duration, out.load_duration, out.prompt_tokens))

    return await until_disconnect(request, run())


async def embeddings_route(request: Request) -> Response:
    """The legacy /api/embeddings: one prompt, the raw pooled vector (not normalised)."""
    body = await read_json(request)
    req = schema.parse_embed(body, serving(request).default_keep_alive, struct=schema.EMBEDDING)
    req.truncate = False  # Ollama's legacy route hands the prompt to the runner as is
    prompt = field(body, "prompt", str, "", struct=schema.EMBEDDING)

    async def run() -> Response:
        out = await embedding.embed(serving(request), req, [prompt] if prompt else [], normalize=False, legacy=True)
        # float64 of the float32 values, not normalised: what Ollama's []float64 field carries
        return json_response({"embedding": out.vectors[0] if out.vectors else []})

    return await until_disconnect(request, run())


ROUTES = [
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/api/version", version, methods=["GET", "HEAD"]),
    Route("/api/ps", ps, methods=["GET"]),
    Route("/api/generate", generate_route, methods=["POST"]),
    Route("/api/chat", chat_route, methods=["POST"]),
    Route("/api/embed", embed_route, methods=["POST"]),
    Route("/api/embeddings", embeddings_route, methods=["POST"]),
]
