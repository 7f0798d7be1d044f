"""The Starlette app: Ollama's routes, its error shapes, and the state handlers share."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .. import OLLAMA_VERSION
from ..config import default_keep_alive
from .errors import APIError, error_response, json_response
from .generate import chat, generate
from .metrics import metrics
from .openai import ROUTES as openai_routes
from .security import SecurityMiddleware
from .streaming import rfc3339

log = logging.getLogger("vllama.api")


async def root(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


async def version(request: Request) -> Response:
    return json_response({"version": OLLAMA_VERSION})


async def ps(request: Request) -> Response:
    models = []
    for entry in request.app.state.scheduler.loaded():
        model = entry.model
        size = model.size + getattr(entry.runner, "cache_bytes", 0)
        models.append({
            "name": model.name, "model": model.name, "size": size, "digest": model.digest,
            "details": model.details, "expires_at": rfc3339(entry.expires_at),
            "size_vram": size if getattr(entry.runner, "on_gpu", False) else 0,
            "context_length": entry.runner.context_length,
        })
    return json_response({"models": models})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # gin's plain-text router answers, which Ollama clients see for unknown paths and methods;
    # gin sends `text/plain` without a charset (Starlette would add one to a media_type).
    headers = {**(exc.headers or {}), "content-type": "text/plain"}
    text = {404: "404 page not found", 405: "405 method not allowed"}.get(exc.status_code, exc.detail)
    return Response(text, exc.status_code, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return error_response(500, str(exc) or type(exc).__name__)


def native_routes() -> list[Route]:
    from .embed import ROUTES as embed_routes
    from .model_routes import ROUTES as model_routes

    return [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/api/version", version, methods=["GET", "HEAD"]),
        Route("/api/ps", ps, methods=["GET"]),
        Route("/api/generate", generate, methods=["POST"]),
        Route("/api/chat", chat, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        *model_routes,
        *embed_routes,
    ]


def build_app(store: Any, scheduler: Any, keep_alive: float | None = None, bind_host: str | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        await scheduler.shutdown()

    app = Starlette(
        routes=[*native_routes(), *openai_routes],
        # CORS, the DNS-rebinding Host check (when bound to loopback) and VLLAMA_API_KEY
        middleware=[Middleware(SecurityMiddleware, bind_host=bind_host)],
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.scheduler = scheduler
    app.state.default_keep_alive = default_keep_alive() if keep_alive is None else keep_alive
    return app
