"""The cold path: `vllama serve` start to the first token, and the reload after a keep_alive 0 unload.

    python -m bench.cold_start                                   # smollm2:135m from ~/.vllama/models
    python -m bench.cold_start --model tiny --tiny               # on the tiny test model, its own store
    python -m bench.cold_start --starts fork,spawn --repeat 2    # vllama's engine start beside vLLM's
    python -m bench.cold_start --warm on,off --repeat 3          # warm starts (engine/launch.py) on and off

Each repetition starts a fresh server and, as a user would, sends one streamed /api/generate at once:
"serve to first token" runs from the `serve` process's start to that answer's first chunk. Then the
model is unloaded (`keep_alive: 0`) and asked again: "reload" is that request's time to first chunk.
`load_duration` is what the server itself reports for each. With `--ollama URL`, the same reload is
measured on a running Ollama (the model must exist there). The engine start methods (VLLAMA_ENGINE_START)
and warm starts (VLLAMA_WARM_START) alternate within a repetition, so the machine's noise falls on each
alike; each row carries the load average when it ended. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
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


# vLLM's log lines with milliseconds (its default format has seconds), for the phases below
_VLLM_LOGGING = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"ms": {"format": "(%(processName)s pid=%(process)d) %(levelname)s %(asctime)s.%(msecs)03d "
                                    "[%(filename)s:%(lineno)d] %(message)s", "datefmt": "%Y-%m-%dT%H:%M:%S"}},
    "handlers": {"vllm": {"class": "logging.StreamHandler", "formatter": "ms", "stream": "ext://sys.stdout"}},
    "loggers": {"vllm": {"handlers": ["vllm"], "level": "INFO", "propagate": False}},
}
# The phases of one engine start, each ending at the first log line with its marker after the start.
PHASES = (
    ("to_config_s", "Resolved architecture"),  # the vLLM import (first start) and the config's resolution
    ("to_core_s", "Initializing a V1 LLM engine"),  # the server's part: renderer, fork; the core's logging up
    ("core_init_s", "Starting to load model"),  # the core: device, distributed and worker set-up
    ("weights_s", "Loading weights took"),  # model construction and the weights read
    ("ready_s", "init engine (profile"),  # weights repacked for the CPU kernels, the KV cache, profiling
)
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})")


def _stamped(log_path: Path) -> list[tuple[float, str]]:
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = _STAMP.search(line)
        if m:
            out.append((datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp(), line))
    return out


def phases(log_path: Path, since: float, first_token: float, prefix: str) -> dict[str, float | None]:
    """Each phase's seconds (from the previous phase's end, the first from `since`, epoch seconds), and
    `ready_to_token_s`: from the engine's readiness to the first streamed chunk. A phase whose line came
    before `since` (a config resolved ahead, by warm starts) counts 0."""
    lines = [(t, line) for t, line in _stamped(log_path) if t >= since - 30]
    out: dict[str, float | None] = {}
    previous = since
    for name, marker in PHASES:
        at = next((t for t, line in lines if marker in line and t >= since), None)
        if name == "to_config_s" and at is None:
            at = since  # resolved ahead of the request
        out[prefix + name] = None if at is None else round(max(0.0, at - previous), 2)
        previous = at if at is not None else previous
    out[prefix + "ready_to_token_s"] = round(first_token - previous, 2)
    return out


def measure_vllama(model: str, start: str, log_dir: Path, warm: str = "on") -> dict[str, Any]:
    os.environ["VLLAMA_ENGINE_START"] = start
    os.environ["VLLAMA_WARM_START"] = "1" if warm == "on" else "0"
    logging_config = log_dir / "vllm-logging.json"
    logging_config.write_text(json.dumps(_VLLM_LOGGING))
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(logging_config)
    log_path = log_dir / f"serve-{start}-warm-{warm}-{int(time.time())}.log"
    launched, launched_at = time.perf_counter(), time.time()
    with served_vllama([], log_path) as server:
        up = time.perf_counter() - launched
        first, first_load = _first_chunk(server["url"], model)  # sent the moment the server answers
        serve_to_first = up + first
        _unload(server["url"], model)
        reload_at = time.time()
        reload, reload_load = _first_chunk(server["url"], model)
    row = {"target": f"vllama ({start}, warm {warm})", "http_up_s": round(up, 2),
           "serve_to_first_token_s": round(serve_to_first, 2), "first_load_s": round(first_load / 1e9, 2),
           "reload_first_token_s": round(reload, 2), "reload_load_s": round(reload_load / 1e9, 2),
           "load_average": round(os.getloadavg()[0], 2)}
    row.update(phases(log_path, launched_at, launched_at + serve_to_first, "first."))
    row.update(phases(log_path, reload_at, reload_at + reload, "reload."))
    return row


def measure_ollama(url: str, model: str) -> dict[str, Any]:
    _first_chunk(url, model)
    _unload(url, model)
    reload, reload_load = _first_chunk(url, model)
    return {"target": "ollama", "reload_first_token_s": round(reload, 2), "reload_load_s": round(reload_load / 1e9, 2),
            "load_average": round(os.getloadavg()[0], 2)}


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def markdown(rows: list[dict[str, Any]], model: str) -> str:
    keys = ["http_up_s", "serve_to_first_token_s", "first_load_s", "reload_first_token_s", "reload_load_s",
            "load_average"]
    runs = max(1, len(rows) // max(1, len({r["target"] for r in rows})))
    lines = [f"Cold path on `{model}`, medians of {runs} run(s) per target",
             "", "| target | HTTP up s | serve to first token s | first load s | reload first token s "
                 "| reload load s | load average |",
             "|---|---|---|---|---|---|---|"]
    for target in dict.fromkeys(r["target"] for r in rows):
        mine = [r for r in rows if r["target"] == target]
        cells = [_median(mine, k) for k in keys]
        lines.append(f"| {target} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    names = [name for name, _ in PHASES] + ["ready_to_token_s"]
    if any(f"first.{names[0]}" in r for r in rows):
        lines += ["", "Phases (s, from vLLM's log): to config (import, config), to core (renderer, fork), core "
                  "init, weights (model and weights), ready (repack, KV cache), ready to first token",
                  "", "| target | start | " + " | ".join(n.removesuffix("_s").replace("_", " ") for n in names)
                  + " |", "|---|---|" + "---|" * len(names)]
        for target in dict.fromkeys(r["target"] for r in rows if f"first.{names[0]}" in r):
            mine = [r for r in rows if r["target"] == target]
            for which in ("first", "reload"):
                cells = [_median(mine, f"{which}.{n}") for n in names]
                lines.append(f"| {target} | {which} | "
                             + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
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
    p.add_argument("--warm", default="on", help="warm starts to compare (on, off: VLLAMA_WARM_START)")
    p.add_argument("--logs", type=Path, help="keep each server's log in this folder")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--ollama", metavar="URL", help="a running Ollama to measure the reload on")
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args(argv)
    os.environ.setdefault("VLLAMA_KV_CACHE_MEMORY_BYTES", str(256 << 20))
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        if args.tiny:
            _tiny_store(stack)
        log_dir = args.logs or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cold-logs-")))
        for _ in range(args.repeat):
            for start in args.starts.split(","):
                for warm in args.warm.split(","):
                    rows.append(measure_vllama(args.model, start.strip(), log_dir, warm.strip()))
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
