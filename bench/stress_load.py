"""Load with hang-ups: N concurrent streamed clients on a live vllama, a share of them gone mid-request.

    python -m bench.stress_load                          # starts `vllama serve` on the tiny test model
    python -m bench.stress_load --url http://127.0.0.1:11434 --model tiny --clients 200 --rounds 3

Each round opens N `/api/generate` streams at once, sampled with a seed of their own (`--greedy`
for temperature 0), a `--long-share` of them with a long prompt that is prefilled in chunks. A
`--disconnect` share of them (a quarter by default) hang up at a random moment: before the answer
starts, or after a random number of chunks. Every other stream must end with `done: true` and no
error line. After each round the engine must hold no request
(`vllama_engine_requests_unfinished` on /metrics back to 0: anything left is a leak), and the
server's resident memory (VmRSS of the API process and of its engine core, from /proc) is
recorded; across rounds it should stay flat.

Figures per round: requests held (the most the engine held at once, sampled from /metrics, and
the most streams open on the client side), completed, disconnected, failed, p50/p99 latency of a
whole stream and of its first chunk, leaked requests, RSS. Nothing here asserts on timing; the
pytest wrapper (tests/reliability/test_load.py) asserts completions, zero leaks and an RSS bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

UNFINISHED = re.compile(r"^vllama_engine_requests_unfinished\{[^}]*\} (\d+)", re.MULTILINE)


# -- the server process -------------------------------------------------------------------------

def server_pid(url: str) -> int | None:
    """The process listening on the URL's port (psutil, which vLLM depends on), if it is ours to see."""
    import psutil

    port = httpx.URL(url).port
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.AccessDenied:
        pass
    return None


def engine_pids(pid: int) -> list[int]:
    """The server's engine-core children (vLLM names them VLLM::EngineCore)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "EngineCor" in child.name() or any("EngineCore" in part for part in child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def rss_bytes(pid: int | None) -> int | None:
    """VmRSS from /proc/<pid>/status."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def unfinished(url: str) -> int:
    """Requests every loaded engine holds, running or waiting."""
    text = httpx.get(url + "/metrics", timeout=30).text
    return sum(int(n) for n in UNFINISHED.findall(text))


def settle(url: str, timeout: float = 30.0) -> int:
    """Wait for the engine to hold nothing; what it still holds after `timeout` leaked."""
    deadline = time.monotonic() + timeout
    while True:
        held = unfinished(url)
        if held == 0 or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


# -- one round ----------------------------------------------------------------------------------

@dataclass
class Round:
    clients: int
    completed: int = 0
    disconnected: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    engine_held_max: int = 0
    streams_open_max: int = 0
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    first_chunk_p50_s: float | None = None
    first_chunk_p99_s: float | None = None
    wall_s: float = 0.0
    leaked: int = 0
    server_rss: int | None = None
    engine_rss: int | None = None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def _client(http: httpx.AsyncClient, body: dict[str, Any], hang_up: tuple[str, float] | None,
                  state: dict[str, Any]) -> tuple[str, float | None, float | None, str]:
    """('done'|'gone'|'failed', latency, first-chunk latency, detail)."""
    start = time.perf_counter()
    first: float | None = None

    async def run() -> tuple[str, float | None, float | None, str]:
        nonlocal first
        lines = 0
        async with http.stream("POST", "/api/generate", json=body) as r:
            state["open"] += 1
            state["open_max"] = max(state["open_max"], state["open"])
            try:
                if r.status_code != 200:
                    return "failed", None, None, f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"
                last: dict[str, Any] = {}
                async for line in r.aiter_lines():
                    if not line:
                        continue
                    last = json.loads(line)
                    lines += 1
                    first = first or time.perf_counter() - start
                    if "error" in last:
                        return "failed", None, None, f"error line: {last['error']}"
                    if hang_up and hang_up[0] == "chunks" and lines >= hang_up[1]:
                        return "gone", None, None, f"after {lines} chunks"
                if last.get("done") is not True:
                    return "failed", None, None, f"stream ended without done: {last}"
                return "done", time.perf_counter() - start, first, ""
            finally:
                state["open"] -= 1

    if hang_up and hang_up[0] == "time":
        try:
            return await asyncio.wait_for(run(), timeout=hang_up[1])
        except asyncio.TimeoutError:
            return "gone", None, None, f"after {hang_up[1]:.2f} s"
    try:
        return await run()
    except (httpx.HTTPError, json.JSONDecodeError) as err:
        return "failed", None, None, f"{type(err).__name__}: {err}"


async def _sample_engine(url: str, state: dict[str, Any], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                text = (await http.get("/metrics")).text
                held = sum(int(n) for n in UNFINISHED.findall(text))
                state["held_max"] = max(state["held_max"], held)
            except httpx.HTTPError:
                pass
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.2)
            except asyncio.TimeoutError:
                pass


LONG_PROMPT = " ".join(["the llama walks over a green hill while a small bird sings near the river"] * 90)


def _body(model: str, i: int, num_predict: int, sampled: bool, long: bool) -> dict[str, Any]:
    """Client i's request: seeded and sampled (each its own seed) unless greedy; a long prompt, whose
    prefill is chunked beside the others' steps, when `long`."""
    options = {"num_predict": num_predict, "temperature": 0.8 if sampled else 0, "seed": i if sampled else 1}
    return {"model": model, "prompt": LONG_PROMPT if long else "Tell me a story about a llama.",
            "stream": True, "options": options}


async def _round(url: str, model: str, clients: int, disconnect: float, num_predict: int, rng: random.Random,
                 typical_s: float, sampled: bool = True, long_share: float = 0.1) -> Round:
    bodies = [_body(model, i, num_predict, sampled, rng.random() < long_share) for i in range(clients)]
    leavers = set(rng.sample(range(clients), round(clients * disconnect)))
    plans: list[tuple[str, float] | None] = []
    for i in range(clients):
        if i not in leavers:
            plans.append(None)
        elif rng.random() < 0.5:  # a time, which may fall before the first byte (queued, prefilling)
            plans.append(("time", rng.uniform(0.0, typical_s)))
        else:
            plans.append(("chunks", rng.randrange(1, max(num_predict, 2))))
    state = {"open": 0, "open_max": 0, "held_max": 0}
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0), limits=limits) as http:
        sampler = asyncio.ensure_future(_sample_engine(url, state, stop))
        results = await asyncio.gather(*(_client(http, body, plan, state) for body, plan in zip(bodies, plans)))
        stop.set()
        await sampler
    out = Round(clients=clients, wall_s=round(time.perf_counter() - started, 3))
    latencies, firsts = [], []
    for kind, latency, first, detail in results:  # a leaver whose moment came after its end counts as done
        if kind == "done":
            out.completed += 1
            latencies.append(latency)
            firsts.append(first)
        elif kind == "gone":
            out.disconnected += 1
        else:
            out.failed += 1
            out.failures.append(detail)
    out.engine_held_max = state["held_max"]
    out.streams_open_max = state["open_max"]
    out.latency_p50_s, out.latency_p99_s = _quantile(latencies, 0.5), _quantile(latencies, 0.99)
    out.first_chunk_p50_s, out.first_chunk_p99_s = _quantile(firsts, 0.5), _quantile(firsts, 0.99)
    return out


def run(url: str, model: str = "tiny", clients: int = 200, rounds: int = 3, disconnect: float = 0.25,
        num_predict: int = 64, seed: int = 0, pid: int | None = None, settle_s: float = 30.0,
        sampled: bool = True, long_share: float = 0.1) -> dict[str, Any]:
    """Warm up, then `rounds` rounds; returns the figures (see the module docstring)."""
    rng = random.Random(seed)
    pid = pid or server_pid(url)
    warm = {"model": model, "prompt": "hi", "stream": False, "options": {"num_predict": num_predict}}
    httpx.post(url + "/api/generate", json=warm, timeout=600).raise_for_status()  # loads the model
    started = time.perf_counter()
    httpx.post(url + "/api/generate", json=warm, timeout=600).raise_for_status()
    typical = max(time.perf_counter() - started, 0.05) * 2  # one stream alone, doubled for a loaded engine
    out: list[Round] = []
    for _ in range(rounds):
        result = asyncio.run(_round(url, model, clients, disconnect, num_predict, rng, typical, sampled, long_share))
        result.leaked = settle(url, settle_s)
        result.server_rss = rss_bytes(pid)
        engines = engine_pids(pid) if pid else []
        result.engine_rss = sum(rss_bytes(p) or 0 for p in engines) or None
        out.append(result)
    first_rss, last_rss = out[0].server_rss, out[-1].server_rss
    return {
        "url": url, "model": model, "clients": clients, "rounds": rounds, "disconnect": disconnect,
        "num_predict": num_predict, "seed": seed, "server_pid": pid, "sampled": sampled, "long_share": long_share,
        "results": [asdict(r) for r in out],
        "leaked_total": sum(r.leaked for r in out),
        "failed_total": sum(r.failed for r in out),
        "server_rss_growth": round(last_rss / first_rss, 3) if first_rss and last_rss else None,
    }


def markdown(figures: dict[str, Any]) -> str:
    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    def mib(x: int | None) -> str:
        return "-" if x is None else f"{x / 2**20:.0f}"

    lines = [
        f"{figures['clients']} streamed clients x {figures['rounds']} rounds on `{figures['model']}`, "
        f"{figures['disconnect']:.0%} hanging up, num_predict {figures['num_predict']}, "
        f"{'seeded sampling' if figures.get('sampled') else 'greedy'}, {figures.get('long_share', 0):.0%} long prompts",
        "",
        "| round | held (engine max / streams open max) | done | hung up | failed | p50 s | p99 s | "
        "first chunk p99 s | leaked | server RSS MiB | engine RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(figures["results"], 1):
        lines.append(f"| {i} | {r['engine_held_max']} / {r['streams_open_max']} | {r['completed']} | "
                     f"{r['disconnected']} | {r['failed']} | {s(r['latency_p50_s'])} | {s(r['latency_p99_s'])} | "
                     f"{s(r['first_chunk_p99_s'])} | {r['leaked']} | {mib(r['server_rss'])} | "
                     f"{mib(r['engine_rss'])} |")
    lines.append("")
    lines.append(f"leaked requests: {figures['leaked_total']}; failed: {figures['failed_total']}; "
                 f"server RSS last/first round: {figures['server_rss_growth']}")
    return "\n".join(lines)


def _serve_tiny(stack: ExitStack) -> str:
    """`vllama serve` on a temporary store holding the tiny test model; its URL."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fixtures.tiny_model import build_tiny_llama
    from vllama.models.store import ModelStore

    from .serve import served_vllama

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stress-load-")))
    ModelStore(tmp / "models").create_from_folder("tiny", build_tiny_llama(tmp / "tiny-llama"))
    os.environ["VLLAMA_MODELS"] = str(tmp / "models")
    os.environ.setdefault("VLLAMA_KV_CACHE_MEMORY_BYTES", str(256 << 20))
    server = stack.enter_context(served_vllama([], tmp / "serve.log"))
    return server["url"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.stress_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running vllama (default: start one on the tiny test model)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--disconnect", type=float, default=0.25, help="share of clients that hang up")
    p.add_argument("--num-predict", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--greedy", action="store_true", help="temperature 0 (default: sampled, each client its own seed)")
    p.add_argument("--long-share", type=float, default=0.1, help="share of clients with a long (chunked) prompt")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    with ExitStack() as stack:
        url = args.url or _serve_tiny(stack)
        figures = run(url, args.model, args.clients, args.rounds, args.disconnect, args.num_predict, args.seed,
                      sampled=not args.greedy, long_share=args.long_share)
    print(markdown(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["leaked_total"] == 0 and figures["failed_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
