"""Race a handler against the client going away, so abandoned requests stop using the engine.

Streamed bodies are covered by Starlette (it cancels the body iterator on `http.disconnect`);
this covers the time before the first byte: model load, prefill, and whole non-streamed answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

CLIENT_CLOSED = 499  # nginx's and Ollama's "client closed request"


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, handler: Awaitable[Response]) -> Response:
    work = asyncio.ensure_future(handler)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        watch.cancel()
    if work.done():
        return work.result()
    work.cancel()  # vLLM aborts the engine request when its generator is cancelled
    try:
        await work
    except BaseException:
        pass
    return Response(status_code=CLIENT_CLOSED)
