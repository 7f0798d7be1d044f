"""`/v1/messages`: parse, call serving, render; errors keep Ollama's status codes in Anthropic's
`{"type":"error","error":{...}}` envelope. Claude Code and the Anthropic SDK send `x-api-key` and
`anthropic-version`; the version is accepted whatever it says (Ollama reads neither)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models.names import InvalidName
from ...models.store import ModelNotFound
from ...serving.errors import ServingError
from ...serving.generate import generate
from ..disconnect import until_disconnect
from ..errors import APIError, Refused, middleware, status_and_message
from ..gojson import GoDecodeError, dumps
from ..http import JSON_TYPE as GIN_JSON_TYPE
from ..http import serving
from ..openai.routes import read_body  # gin's binding, as on every /v1 route
from . import render, schema

log = logging.getLogger("vllama.api")
JSON_TYPE = "application/json"  # what the middleware's writer sets: no charset

Handler = Callable[[Request], Awaitable[Response]]


def anthropic_json(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj) + b"\n", status_code=status, media_type=JSON_TYPE)


def anthropic_error(status: int, message: str) -> Response:
    return anthropic_json(schema.error_body(status, message), status)


def anthropic_errors(handler: Handler) -> Handler:
    """Every failure (and anything unexpected) in Anthropic's error shape."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as err:  # the middleware's own refusal: gin's c.JSON, its charset, no newline
            return Response(dumps(schema.error_body(err.status, err.message)), status_code=err.status,
                            media_type=GIN_JSON_TYPE)
        except (APIError, ServingError, GoDecodeError) as err:
            return anthropic_error(*status_and_message(err))
        except Exception as err:  # noqa: BLE001 - the server stays up, the client gets a 500
            log.exception("unhandled error on %s", request.url.path)
            return anthropic_error(*status_and_message(err))

    return wrapped


async def _relax_thinking(request: Request, parsed: schema.MessagesRequest) -> None:
    """Claude Code asks every model to think: Ollama drops `think` for a model that cannot, rather
    than refusing the request (its `relax_thinking` flag on this route)."""
    req = parsed.chat
    if not req.think:
        return
    try:
        model = await asyncio.to_thread(serving(request).store.get, req.model)
    except (InvalidName, ModelNotFound):
        return  # the pipeline answers those
    if "thinking" not in model.capabilities:
        req.think = None


@anthropic_errors
async def messages(request: Request) -> Response:
    with middleware():  # the body, its checks and its conversion to a chat request
        body = await read_body(request)
        parsed = schema.parse(body, serving(request).default_keep_alive)
    await _relax_thinking(request, parsed)
    req, msg_id = parsed.chat, schema.message_id()

    async def run() -> Response:
        events = generate(serving(request), req)
        if req.stream:
            return await render.sse_response(msg_id, req.model, parsed.estimated_input_tokens, events)
        return anthropic_json(await render.whole(msg_id, req.model, events))

    return await until_disconnect(request, run())


ROUTES = [Route("/v1/messages", messages, methods=["POST"])]
