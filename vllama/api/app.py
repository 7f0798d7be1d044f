"""The Starlette app: every dialect's routes, the security middleware, and errors as Ollama answers them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from ..config import default_keep_alive
from ..engine.scheduler import Scheduler
from ..models.store import ModelStore
from ..serving.context import ServingContext
from ..serving.errors import ServingError
from .anthropic.routes import ROUTES as anthropic_routes
from .errors import APIError, status_and_message
from .gojson import GoDecodeError
from .http import error_response
from .metrics import ROUTES as metrics_routes
from .metrics import RequestMetrics, ServerMetrics
from .ollama.cloud import ROUTES as cloud_routes
from .ollama.models import ROUTES as model_routes
from .ollama.routes import ROUTES as ollama_routes
from .openai.responses import ROUTES as responses_routes
from .openai.routes import ROUTES as openai_routes
from .security import SecurityMiddleware

log = logging.getLogger("vllama.api")


async def _failure(request: Request, exc: Exception) -> Response:
    return error_response(*status_and_message(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # gin's plain-text router answers, which Ollama clients see for unknown paths and methods;
    # gin sends `text/plain` without a charset (Starlette would add one to a media_type).
    headers = {**(exc.headers or {}), "content-type": "text/plain"}
    text = {404: "404 page not found", 405: "405 method not allowed"}.get(exc.status_code, exc.detail)
    return Response(text, exc.status_code, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return error_response(*status_and_message(exc))


def build_app(store: ModelStore, scheduler: Scheduler, keep_alive: float | None = None,
              bind_host: str | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await scheduler.shutdown()

    app = Starlette(
        routes=[*ollama_routes, *metrics_routes, *model_routes, *openai_routes, *responses_routes,
                *anthropic_routes, *cloud_routes],
        # CORS, the DNS-rebinding Host check (when bound to loopback) and VLLAMA_API_KEY; outside
        # them, every answer counted for /metrics (refusals too)
        middleware=[Middleware(RequestMetrics), Middleware(SecurityMiddleware, bind_host=bind_host)],
        exception_handlers={APIError: _failure, ServingError: _failure, GoDecodeError: _failure,
                            HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.serving = ServingContext(store, scheduler,
                                       default_keep_alive() if keep_alive is None else keep_alive)
    app.state.store = store  # the tests' handle on what the app serves
    app.state.scheduler = scheduler
    app.state.metrics = ServerMetrics(scheduler, app.routes)
    return app
