"""The `/v1` routes: parse, call serving, render; errors keep Ollama's status codes in OpenAI's
`{"error": {...}}` envelope."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models.names import InvalidName, ModelName
from ...models.store import ModelNotFound
from ...serving import embed as embedding
from ...serving.errors import BadRequest, NotFound, ServingError
from ...serving.events import Event
from ...serving.generate import generate, load_only
from ...serving.requests import ChatRequest, CommonRequest, is_empty
from ..disconnect import until_disconnect
from ..errors import APIError, Refused, middleware, read_raw, status_and_message
from ..gojson import GoDecodeError, decode_object, dumps, struct_field
from ..http import JSON_TYPE, serving
from ..ollama import schema as native
from ..ollama.embeddings import float32_base64, float32_list
from . import render, schema

log = logging.getLogger("vllama.api")

OPENAI_JSON = "application/json"  # Ollama's /v1 answers carry no charset
ENCODING_FORMATS = ("float", "base64")

Handler = Callable[[Request], Awaitable[Response]]


def openai_json(obj: Any, status: int = 200) -> Response:
    # Go's json.Encoder ends the body with a newline
    return Response(dumps(obj) + b"\n", status_code=status, media_type=OPENAI_JSON)


def openai_error(status: int, message: str) -> Response:
    """`{"error": {"message", "type", "param": null, "code": null}}` with the native status."""
    return openai_json(schema.error_body(status, message), status)


def refused(err: Refused) -> Response:
    """A refusal of the /v1 middleware: gin's c.JSON, with its charset and no newline."""
    return Response(dumps(schema.error_body(err.status, err.message)), status_code=err.status, media_type=JSON_TYPE)


def openai_errors(handler: Handler) -> Handler:
    """Answer every failure (and anything unexpected) in OpenAI's error shape instead of Ollama's."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as err:
            return refused(err)
        except (APIError, ServingError, GoDecodeError) as err:
            return openai_error(*status_and_message(err))
        except Exception as err:  # noqa: BLE001 - the server stays up, the client gets a 500
            log.exception("unhandled error on %s", request.url.path)
            return openai_error(*status_and_message(err))

    return wrapped


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON body; gin's ShouldBindJSON says `EOF` for an empty one."""
    raw = await read_raw(request)
    if not raw.strip():
        raise APIError(400, "EOF")
    return decode_object(raw)


# -- completions --------------------------------------------------------------------------------

async def _loaded(request: Request, req: CommonRequest) -> AsyncIterator[Event]:
    yield await load_only(serving(request), req, may_unload=False)


def _events(request: Request, req: CommonRequest) -> AsyncIterator[Event]:
    """The events; for an empty conversation or prompt, Ollama's `load` answer (after loading)."""
    if is_empty(req):
        return _loaded(request, req)
    return generate(serving(request), req)


async def _answer(request: Request, req: CommonRequest, include_usage: bool) -> Response:
    is_chat = isinstance(req, ChatRequest)

    async def run() -> Response:
        if req.stream:
            return await render.sse_response(req.model, is_chat, _events(request, req), include_usage)
        return openai_json(await render.whole(req.model, is_chat, _events(request, req)))

    return await until_disconnect(request, run())


@openai_errors
async def chat_completions(request: Request) -> Response:
    with middleware():
        body = await read_body(request)
        struct = "ChatCompletionRequest"
        if not struct_field(body, "messages", list, "[]openai.Message", struct):
            raise BadRequest("[] is too short - 'messages'")
        include_usage = schema.stream_options(body, struct)
        converted = schema.chat_body(body)
    req = native.parse_chat(converted, serving(request).default_keep_alive)
    return await _answer(request, req, include_usage)


@openai_errors
async def completions(request: Request) -> Response:
    with middleware():
        body = await read_body(request)
        include_usage = schema.stream_options(body, "CompletionRequest")
        converted = schema.completion_body(body)
    req = native.parse_generate(converted, serving(request).default_keep_alive)
    return await _answer(request, req, include_usage)


# -- models -------------------------------------------------------------------------------------

@openai_errors
async def list_models(request: Request) -> Response:
    models = await asyncio.to_thread(serving(request).store.list)
    # Ollama writes `"data": null` when there are no models; an empty list is what clients expect.
    return openai_json({"object": "list", "data": [schema.model_entry(m.name, m) for m in models]})


@openai_errors
async def retrieve_model(request: Request) -> Response:
    model_id = request.path_params["model"]
    try:
        name = ModelName.parse(model_id)
    except InvalidName:
        raise BadRequest("invalid model name") from None
    try:
        model = await asyncio.to_thread(serving(request).store.get, model_id)
    except ModelNotFound:
        raise NotFound(f"model '{model_id}' not found") from None  # as sent, like /api/show
    # the id and its namespace as written, like Ollama's RetrieveMiddleware
    return openai_json({"id": model_id, "object": "model", "created": schema.created(model),
                        "owned_by": name.namespace})


# -- embeddings ---------------------------------------------------------------------------------

@openai_errors
async def embeddings(request: Request) -> Response:
    with middleware():
        body = await read_body(request)
        req = native.parse_embed(body, serving(request).default_keep_alive, native=False)
        fmt = body.get("encoding_format")
        if fmt is not None and fmt != "" and not (isinstance(fmt, str) and fmt.lower() in ENCODING_FORMATS):
            shown = fmt if isinstance(fmt, str) else dumps(fmt).decode()
            raise BadRequest(f"Invalid value for 'encoding_format' = {shown}. Supported values: ['float', 'base64'].")
        value = body.get("input")
        if value == "":
            value = [""]
        if value is None or value == []:
            raise BadRequest("invalid input")
    encode: Callable[[list[float]], Any] = (
        float32_base64 if isinstance(fmt, str) and fmt.lower() == "base64" else float32_list)
    texts = native.embed_inputs(value)  # /api/embed's own check, behind the middleware

    async def run() -> Response:
        out = await embedding.embed(serving(request), req, texts, normalize=True)
        return openai_json(schema.embeddings_response(req.model, [encode(v) for v in out.vectors], out.prompt_tokens))

    return await until_disconnect(request, run())


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
]
