"""A workload and its driver: fixed items (bench/workload_kinds.py), fixed options, R units with at most C in flight.

A target is anything with `async request(workload, item) -> dict` (one streamed request, measured);
`HttpTarget` speaks Ollama's native API (/api/generate for raw prompts, /api/chat for messages) to any server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from vllama.cli.http import tls_for

from . import workload_kinds as kinds
from .client import ProtocolError, StreamClient
from .stats import inter_token_latency

PROMPTS_FILE = Path(__file__).with_name("prompts.json")
KEEP_ALIVE = "1h"  # no target unloads the model between levels


def load_prompts(path: Path | None = None) -> list[dict[str, str]]:
    prompts = json.loads((path or PROMPTS_FILE).read_text(encoding="utf-8"))
    if not prompts or not all(isinstance(p, dict) and p.get("id") and p.get("prompt") for p in prompts):
        raise ValueError("prompts file must be a non-empty list of {id, prompt} objects")
    return prompts


@dataclass
class Workload:
    """One workload (bench/workload_kinds.py) with the options every target is sent alike."""

    prompts: list[dict[str, str]]
    num_predict: int = 64
    temperature: float = 0.0
    seed: int = 1
    repeat_penalty: float = 1.0
    kind: str = "raw"
    long_tokens: int = 2000
    turns: int = 4
    _runs: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in kinds.KINDS:
            raise ValueError(f"unknown workload {self.kind!r} (one of {', '.join(kinds.KINDS)})")

    def options(self) -> dict[str, Any]:
        """Set explicitly on every side: Ollama's defaults (temperature 0.8, no length cap) differ from vLLM's."""
        return {"num_predict": self.num_predict, "temperature": self.temperature, "seed": self.seed,
                "repeat_penalty": self.repeat_penalty}

    def n_requests(self, concurrency: int) -> int:
        """Units (single requests, or conversations) per level."""
        return kinds.n_units(self.kind, concurrency)

    def n_records(self, concurrency: int) -> int:
        per_unit = self.turns if self.kind == "multiturn" else 1
        return self.n_requests(concurrency) * per_unit

    def schedule(self, concurrency: int, tag: str = "0") -> list[kinds.Unit]:
        """The units of one level: every target sees the same sequence for the same tag."""
        return kinds.units(self.kind, self.prompts, self.n_requests(concurrency), tag,
                           long_tokens=self.long_tokens, turns=self.turns)

    def next_tag(self, target: str, concurrency: int) -> str:
        """A tag for a target's next run of a level: its n-th run of the level is tagged alike on every
        target, and no two runs share one (long prompts and conversations must not hit a cache)."""
        key = f"{target}@{concurrency}"
        self._runs[key] = self._runs.get(key, 0) + 1
        return f"{self.kind[0]}{concurrency}.{self._runs[key]}"

    def warmup_items(self, n: int) -> list[kinds.Item]:
        units = kinds.units(self.kind, self.prompts, max(n, 1), "warm", long_tokens=self.long_tokens, turns=1)
        return [unit[0] for unit in units][:n]

    def http_request(self, model: str, item: kinds.Item) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": model, "stream": True, "options": self.options(), "keep_alive": KEEP_ALIVE}
        if item.get("format"):
            body["format"] = item["format"]
        if "messages" in item:
            return "/api/chat", {**body, "messages": item["messages"]}
        return "/api/generate", {**body, "prompt": item["prompt"], "raw": True}

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "title": kinds.describe(self.kind), "options": self.options(),
                               "chat": self.kind != "raw" and self.kind != "long",
                               "requests_per_level": "max(C, 4) units" if self.kind in ("multiturn", "long")
                               else "max(2C, 8)"}
        if self.kind in ("raw", "chat"):
            out["prompts"] = self.prompts
        if self.kind == "long":
            out["long_tokens"] = self.long_tokens
        if self.kind == "multiturn":
            out["turns"] = self.turns
        return out


@dataclass
class Timer:
    """Time to the first non-empty chunk, the last one, and the longest pause between two."""

    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    last: float | None = None
    chunks: int = 0
    max_gap: float = 0.0

    def text(self, now: float) -> None:
        if self.first is None:
            self.first = now
        else:
            self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        self.chunks += 1

    def record(self, prompt_id: str, eval_count: int, error: str | None = None, **extra: Any) -> dict[str, Any]:
        end = time.perf_counter()
        return {
            "prompt": prompt_id,
            "sent_s": self.started,  # made relative to the level's start by run_level
            "ttft_s": None if self.first is None else self.first - self.started,
            "latency_s": end - self.started,
            "itl_s": inter_token_latency(self.first, self.last, eval_count),
            "max_gap_s": self.max_gap if self.chunks > 1 else None,
            "chunks": self.chunks,
            "eval_count": eval_count,
            "error": error,
            **extra,
        }


class Target(Protocol):
    name: str
    kind: str

    async def setup(self) -> dict[str, Any]: ...

    async def prepare(self, concurrency: int) -> bool: ...

    async def request(self, workload: Workload, item: kinds.Item) -> dict[str, Any]: ...

    async def close(self) -> None: ...

    def pids(self) -> list[int]: ...


class HttpTarget:
    """A server speaking Ollama's native API; `pid` (if known) is its process, for CPU accounting.

    Streams go through the lean client (bench/client.py) unless `http_client` is "httpx" or the URL
    is https; the other calls (/api/version, /api/show) always use httpx."""

    kind = "http"

    def __init__(self, name: str, url: str, model: str, timeout: float = 600.0, pid: int | None = None,
                 max_connections: int = 64, http_client: str = "lean"):
        self.name = name
        self.url = url.rstrip("/")
        self.model = model
        self.pid = pid
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            base_url=self.url, timeout=httpx.Timeout(timeout, connect=30.0), verify=tls_for(self.url),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.lean = StreamClient(self.url) if http_client == "lean" and self.url.startswith("http://") else None

    @property
    def http_client(self) -> str:
        return "lean" if self.lean else "httpx"

    @property
    def port(self) -> int | None:
        parts = urlsplit(self.url)
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)

    async def prepare(self, concurrency: int) -> bool:
        """Before a level: nothing to do for a server the bench does not run (True: it restarted)."""
        return False

    async def setup(self) -> dict[str, Any]:
        version = (await self.client.get("/api/version")).json().get("version")
        show = await self.client.post("/api/show", json={"model": self.model})
        shown = show.json() if show.status_code == 200 else {"error": show.text}
        info = shown.get("model_info") or {}
        return {
            "kind": self.kind, "url": self.url, "version": version, "model": self.model,
            "details": shown.get("details"), "show_error": shown.get("error"),
            "architecture": info.get("general.architecture"),
            "parameter_count": info.get("general.parameter_count"), "pid": self.pid,
            "http_client": self.http_client,
        }

    @asynccontextmanager
    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[Any]:
        if self.lean:
            async with self.lean.stream(path, body) as resp:
                yield resp
        else:
            async with self.client.stream("POST", path, json=body) as resp:
                yield _HttpxResponse(resp)

    async def request(self, workload: Workload, item: kinds.Item) -> dict[str, Any]:
        path, body = workload.http_request(self.model, item)
        timer = Timer()
        final: dict[str, Any] = {}
        try:
            async with asyncio.timeout(self.timeout), self._stream(path, body) as resp:
                if resp.status_code != 200:
                    text = (await resp.read()).decode(errors="replace")
                    return timer.record(item["id"], 0, f"HTTP {resp.status_code}: {text[:200]}")
                async for line in resp.lines():
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if "error" in obj:
                        return timer.record(item["id"], timer.chunks, f"stream error: {obj['error']}")
                    text = obj.get("response") or (obj.get("message") or {}).get("content") or ""
                    if text:
                        timer.text(time.perf_counter())
                    if obj.get("done"):
                        final = obj
        except (httpx.HTTPError, OSError, TimeoutError, ValueError, ProtocolError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as err:  # ValueError covers bad JSON
            return timer.record(item["id"], timer.chunks, f"{type(err).__name__}: {err}")
        if not final:
            return timer.record(item["id"], timer.chunks, "stream ended without a done chunk")
        server = {k: final.get(k) for k in ("done_reason", "prompt_eval_count", "prompt_eval_duration",
                                            "eval_duration", "total_duration", "load_duration")}
        return timer.record(item["id"], int(final.get("eval_count") or 0), server=server)

    async def close(self) -> None:
        await self.client.aclose()
        if self.lean:
            await self.lean.aclose()

    def pids(self) -> list[int]:
        return [self.pid] if self.pid else []


class _HttpxResponse:
    def __init__(self, resp: httpx.Response):
        self.resp = resp
        self.status_code = resp.status_code

    def lines(self) -> AsyncIterator[str]:
        return self.resp.aiter_lines()

    async def read(self) -> bytes:
        return await self.resp.aread()


async def warm_up(target: Target, workload: Workload, n: int) -> list[dict[str, Any]]:
    """Requests before the measurement (the first may load the model): not counted."""
    return [await target.request(workload, item) for item in workload.warmup_items(n)]


async def run_level(target: Target, workload: Workload, concurrency: int,
                    on_result: Callable[[dict[str, Any]], None] | None = None,
                    tag: str = "0") -> tuple[list[dict[str, Any]], float]:
    """R units through C workers (at most C in flight); a unit's requests (a conversation's turns) run
    one after the other, and a failed turn ends its conversation. Returns the records (in order sent:
    unit, then turn) and the wall time."""
    schedule = list(enumerate(workload.schedule(concurrency, tag)))
    pending = iter(schedule)
    records: list[list[dict[str, Any]]] = [[] for _ in schedule]
    start = time.perf_counter()

    async def worker() -> None:
        for index, unit in pending:  # a shared iterator: each unit is taken by one worker
            for item in unit:
                record = await target.request(workload, item)
                record["index"] = index
                if "turn" in item:
                    record["turn"] = item["turn"]
                record["sent_s"] -= start
                records[index].append(record)
                if on_result:
                    on_result(record)
                if record["error"]:
                    break

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(schedule)))))
    wall = time.perf_counter() - start
    return [r for unit in records for r in unit], wall
