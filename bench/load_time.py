"""Load time of an HTTP target, before its warm-up: the first request, then the reload after an unload.

    first    one short streamed /api/generate: time to its first chunk, and the server's load_duration
             (cold when the model was not loaded yet: /api/ps says which)
    reload   the model unloaded with `keep_alive: 0` (and gone from /api/ps), then the same request

A server the bench started itself also reports how long it took to answer HTTP (`server_start_s`).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from .workload import KEEP_ALIVE

PROBE = "The capital of France is"


async def _loaded(client: httpx.AsyncClient, model: str) -> bool | None:
    try:
        models = (await client.get("/api/ps")).json().get("models") or []
    except (httpx.HTTPError, ValueError):
        return None
    wanted = model.lower() if ":" in model else f"{model.lower()}:latest"
    return any((m.get("name") or m.get("model") or "").lower() in (wanted, model.lower()) for m in models)


async def first_token(client: httpx.AsyncClient, model: str) -> dict[str, Any]:
    """(seconds to the first streamed chunk, the server's load_duration in seconds) of one short request."""
    body = {"model": model, "prompt": PROBE, "raw": True, "stream": True, "keep_alive": KEEP_ALIVE,
            "options": {"num_predict": 1, "temperature": 0}}
    started = time.perf_counter()
    first = None
    load = None
    async with client.stream("POST", "/api/generate", json=body) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {(await resp.aread()).decode(errors='replace')[:200]}")
        async for line in resp.aiter_lines():
            if not line.strip():
                continue
            if first is None:
                first = time.perf_counter() - started
            chunk = json.loads(line)
            if "error" in chunk:
                raise RuntimeError(f"stream error: {chunk['error']}")
            if chunk.get("done"):
                load = chunk.get("load_duration")
    return {"first_token_s": None if first is None else round(first, 3),
            "load_s": None if load is None else round(load / 1e9, 3)}


async def unload(client: httpx.AsyncClient, model: str, timeout_s: float = 120) -> None:
    (await client.post("/api/generate", json={"model": model, "keep_alive": 0})).raise_for_status()
    deadline = time.monotonic() + timeout_s
    while await _loaded(client, model) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def measure(client: httpx.AsyncClient, model: str) -> dict[str, Any]:
    """First request and reload after an unload; an error is recorded, not raised (the run goes on)."""
    out: dict[str, Any] = {"loaded_before": await _loaded(client, model)}
    try:
        out["first"] = await first_token(client, model)
        await unload(client, model)
        out["reload"] = await first_token(client, model)
    except (httpx.HTTPError, RuntimeError, ValueError) as err:
        out["error"] = f"{type(err).__name__}: {err}"
    return out
