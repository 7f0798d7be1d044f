"""The cold path: `vllama serve` start to the first token, and the reload after a keep_alive 0 unload.

    python -m bench.cold_start                                   # smollm2:135m from ~/.vllama/models
    python -m bench.cold_start --model tiny --tiny               # on the tiny test model, its own store
    python -m bench.cold_start --starts fork,spawn --repeat 2    # vllama's engine start beside vLLM's

Each repetition starts a fresh server and, as a user would, sends one streamed /api/generate at once:
"serve to first token" runs from the `serve` process's start to that answer's first chunk. Then the
model is unloaded (`keep_alive: 0`) and asked again: "reload" is that request's time to first chunk.
`load_duration` is what the server itself reports for each. With `--ollama URL`, the same reload is
measured on a running Ollama (the model must exist there). The engine start methods (VLLAMA_ENGINE_START)
alternate within a repetition, so the machine's noise falls on each alike. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from .serve import served_vllama


def _first_chunk(url: str, model: str) -> tuple[float, int]:
    """(seconds to the first streamed chunk, the final chunk's load_duration in ns)."""
    started = time.perf_counter()
    first = None
    load = 0
    body = {"model": model, "prompt": "What is the capital of France?", "keep_alive": "5m",
            "options": {"num_predict": 8, "temperature": 0}}
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=900) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line:
                continue
            first = first if first is not None else time.perf_counter() - started
            chunk = json.loads(line)
            if chunk.get("done"):
                load = chunk.get("load_duration", 0)
    return first or 0.0, load


def _unload(url: str, model: str) -> None:
    httpx.post(url + "/api/generate", json={"model": model, "keep_alive": 0}, timeout=120).raise_for_status()
    deadline = time.monotonic() + 120
    while httpx.get(url + "/api/ps", timeout=10).json()["models"] and time.monotonic() < deadline:
        time.sleep(0.1)


def measure_vllama(model: str, start: str, log_dir: Path) -> dict[str, Any]:
    os.environ["VLLAMA_ENGINE_START"] = start
    launched = time.perf_counter()
    with served_vllama([], log_dir / f"serve-{start}-{int(launched)}.log") as server:
        up = time.perf_counter() - launched
        first, first_load = _first_chunk(server["url"], model)  # sent the moment the server answers
        serve_to_first = up + first
        _unload(server["url"], model)
        reload, reload_load = _first_chunk(server["url"], model)
    return {"target": f"vllama ({start})", "http_up_s": round(up, 2),
            "serve_to_first_token_s": round(serve_to_first, 2),
            "first_load_s": round(first_load / 1e9, 2), "reload_first_token_s": round(reload, 2),
            "reload_load_s": round(reload_load / 1e9, 2)}


def measure_ollama(url: str, model: str) -> dict[str, Any]:
    _first_chunk(url, model)
    _unload(url, model)
    reload, reload_load = _first_chunk(url, model)
    return {"target": "ollama", "reload_first_token_s": round(reload, 2), "reload_load_s": round(reload_load / 1e9, 2)}


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def markdown(rows: list[dict[str, Any]], model: str) -> str:
    keys = ["http_up_s", "serve_to_first_token_s", "first_load_s", "reload_first_token_s", "reload_load_s"]
    runs = max(1, len(rows) // max(1, len({r["target"] for r in rows})))
    lines = [f"Cold path on `{model}`, medians of {runs} run(s) per target",
             "", "| target | HTTP up s | serve to first token s | first load s | reload first token s "
                 "| reload load s |",
             "|---|---|---|---|---|---|"]
    for target in dict.fromkeys(r["target"] for r in rows):
        mine = [r for r in rows if r["target"] == target]
        cells = [_median(mine, k) for k in keys]
        lines.append(f"| {target} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines)


def _tiny_store(stack: ExitStack) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fixtures.tiny_model import build_tiny_llama
    from vllama.models.store import ModelStore

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cold-start-")))
    ModelStore(tmp / "models").create_from_folder("tiny", build_tiny_llama(tmp / "tiny-llama"))
    os.environ["VLLAMA_MODELS"] = str(tmp / "models")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2:135m")
    p.add_argument("--tiny", action="store_true", help="serve the tiny test model from a store of its own")
    p.add_argument("--starts", default="fork,spawn", help="engine start methods to compare (fork, spawn)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--ollama", metavar="URL", help="a running Ollama to measure the reload on")
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args(argv)
    os.environ.setdefault("VLLAMA_KV_CACHE_MEMORY_BYTES", str(256 << 20))
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        if args.tiny:
            _tiny_store(stack)
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cold-logs-")))
        for _ in range(args.repeat):
            for start in args.starts.split(","):
                rows.append(measure_vllama(args.model, start.strip(), log_dir))
                print(json.dumps(rows[-1]), flush=True)
            if args.ollama:
                rows.append(measure_ollama(args.ollama, args.model))
                print(json.dumps(rows[-1]), flush=True)
    print(markdown(rows, args.model))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
