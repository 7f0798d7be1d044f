"""Ollama's routes that need ollama.com (an account, web search and fetch, push), answered as a
local Ollama that is not signed in answers them, rather than with a bare 404: clients (the CLI's
`signin`/`push`, Claude Code's web tools, launchers probing `/api/status`) read these errors.

vllama holds no ollama.com key, so there is no sign-in link to offer (Ollama leaves `signin_url`
out when it cannot build one) and nothing to sign out of (`null`, as after a sign-out).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models.names import InvalidName, ModelName
from ...models.store import ModelNotFound
from ...serving.errors import BadRequest, Failed
from ..errors import read_json, read_raw
from ..gojson import field
from ..http import json_response, serving
from .render import ndjson_response

UNAUTHORIZED = {"error": "unauthorized"}


async def status(request: Request) -> Response:
    """Cloud features are not turned off by configuration; they just need a sign-in."""
    return json_response({"cloud": {"disabled": False, "source": "none"}})


async def whoami(request: Request) -> Response:
    return json_response(UNAUTHORIZED, 401)


async def signout(request: Request) -> Response:
    return json_response(None)


async def web_proxy(request: Request) -> Response:
    """web_search / web_fetch: ollama.com refuses an unsigned request, and Ollama passes that on."""
    if not (await read_raw(request)).strip():
        raise BadRequest("missing request body")
    return json_response(UNAUTHORIZED, 401)


async def _push(request: Request, name: str) -> AsyncIterator[dict[str, Any]]:
    yield {"status": "retrieving manifest"}
    try:
        await asyncio.to_thread(serving(request).store.get, name)
    except (InvalidName, ModelNotFound):
        yield {"status": "couldn't retrieve manifest"}
        raise Failed("file does not exist") from None
    # the registry answers an unsigned upload with 401; the CLI turns that into its namespace hint
    raise Failed("unauthorized")


async def push(request: Request) -> Response:
    body = await read_json(request)
    struct = "PushRequest"
    name = (field(body, "model", str, "", struct=struct) or field(body, "name", str, "", struct=struct)).strip()
    if not name:
        raise BadRequest("model is required")
    try:
        ModelName.parse(name)
    except InvalidName:
        raise BadRequest("invalid model name") from None
    if field(body, "stream", bool, True, struct=struct):
        return await ndjson_response(_push(request, name))
    try:
        async for _ in _push(request, name):
            pass
    except Failed as err:
        return json_response({"error": err.message}, 500)
    return json_response({"status": "success"})  # not reached: a push never succeeds signed out


ROUTES = [
    Route("/api/status", status, methods=["GET"]),
    Route("/api/me", whoami, methods=["POST"]),
    Route("/api/signout", signout, methods=["POST"]),
    Route("/api/user/keys/{key:path}", signout, methods=["DELETE"]),  # the deprecated signout
    Route("/api/experimental/web_search", web_proxy, methods=["POST"]),
    Route("/api/experimental/web_fetch", web_proxy, methods=["POST"]),
    Route("/api/push", push, methods=["POST"]),
]
