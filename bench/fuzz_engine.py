"""Concurrency fuzzing on a live vllama: random mixes of the options it accepts, dozens in flight.

    python -m bench.fuzz_engine                          # starts `vllama serve` on the tiny test model
    python -m bench.fuzz_engine --url http://127.0.0.1:11434 --model tiny --rounds 20 --concurrency 48

Single requests with hostile options are covered elsewhere (tests/reliability/test_hostile_*); what
kills an engine is a *mix* sharing one step: a seeded sampled request beside a chunked prefill took
down every stream on the CPU. So each round sends `--concurrency` requests at once, each drawn from
the option space (seed, temperature, top_k/top_p/min_p, penalties, stop, num_predict, logprobs,
format, raw, and long prompts that force chunked prefill) on /api/generate, /api/chat,
/v1/chat/completions and /v1/completions, streamed or not.

The property, per request: it completes (200, a stream that ends with `done: true` or `[DONE]` and
no error) or it gets a client error (4xx). Per round: the engine holds no request afterwards
(/metrics). A failing case is printed as the JSON body that failed, to pin as a regression test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from .stress_load import _serve_tiny, settle

ENDPOINTS = ("/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions")
WORDS = ("the llama walks over a green hill and the sun is warm on the grass while "
         "a small bird sings near the river ").split()


@dataclass
class Case:
    path: str
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", self.path.startswith("/api/")))


@dataclass
class Outcome:
    case: Case
    status: int
    ok: bool
    detail: str = ""


@dataclass
class RoundFigures:
    sent: int = 0
    completed: int = 0
    client_errors: int = 0
    failed: int = 0
    leaked: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


def prompt_text(rng: random.Random, long: bool) -> str:
    """A short question, or a text of about 1,200-1,600 words: past the CPU engine's 2,048-token
    step budget when two such prompts share a step, so their prefill is chunked."""
    if not long:
        return rng.choice(["Hi!", "Tell me a story.", "What is a llama?", "Count to five.", "Say yes."])
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1200, 1600)))


def _maybe(rng: random.Random, share: float, value: Any) -> Any:
    return value if rng.random() < share else None


def native_options(rng: random.Random) -> dict[str, Any]:
    options = {
        "seed": _maybe(rng, 0.6, rng.randrange(0, 2**31)),
        "temperature": _maybe(rng, 0.8, rng.choice([0, 0.2, 0.7, 1.0, 1.5, 3.0])),
        "top_k": _maybe(rng, 0.4, rng.choice([0, 1, 5, 40, 1000])),
        "top_p": _maybe(rng, 0.4, rng.choice([0.1, 0.5, 0.9, 1.0])),
        "min_p": _maybe(rng, 0.3, rng.choice([0.0, 0.05, 0.5])),
        "repeat_penalty": _maybe(rng, 0.3, rng.choice([0.5, 1.0, 1.1, 2.0])),
        "presence_penalty": _maybe(rng, 0.2, rng.choice([-1.0, 0.5, 1.5])),
        "frequency_penalty": _maybe(rng, 0.2, rng.choice([-1.0, 0.5, 1.5])),
        "repeat_last_n": _maybe(rng, 0.1, rng.choice([0, 64])),
        "stop": _maybe(rng, 0.3, rng.choice([["\n"], ["the", "a"], [" "]])),
        "num_predict": rng.choice([1, 4, 8, 16, 24]),
        "num_ctx": _maybe(rng, 0.1, rng.choice([256, 1024, 2048])),
    }
    return {k: v for k, v in options.items() if v is not None}


def native_case(rng: random.Random, model: str, long: bool) -> Case:
    chat = rng.random() < 0.5
    body: dict[str, Any] = {"model": model, "stream": rng.random() < 0.5, "options": native_options(rng)}
    text = prompt_text(rng, long)
    if chat:
        body["messages"] = [{"role": "user", "content": text}]
        if rng.random() < 0.3:
            body["messages"][:0] = [{"role": "system", "content": "Be brief."}]
    else:
        body["prompt"] = text
        body["raw"] = rng.random() < 0.3
    if rng.random() < 0.2:
        body["format"] = rng.choice(["json", {"type": "object", "properties": {"a": {"type": "string"}}}])
    if rng.random() < 0.2:
        body["logprobs"] = True
        body["top_logprobs"] = rng.choice([0, 1, 3])
    return Case("/api/chat" if chat else "/api/generate", body)


def openai_case(rng: random.Random, model: str, long: bool) -> Case:
    chat = rng.random() < 0.5
    body: dict[str, Any] = {"model": model, "stream": rng.random() < 0.5, "max_tokens": rng.choice([1, 4, 8, 16])}
    extra = {
        "seed": _maybe(rng, 0.6, rng.randrange(0, 2**31)),
        "temperature": _maybe(rng, 0.8, rng.choice([0, 0.7, 1.0, 2.0])),
        "top_p": _maybe(rng, 0.4, rng.choice([0.1, 0.9, 1.0])),
        "presence_penalty": _maybe(rng, 0.2, rng.choice([-1.0, 1.5])),
        "frequency_penalty": _maybe(rng, 0.2, rng.choice([-1.0, 1.5])),
        "stop": _maybe(rng, 0.3, rng.choice(["\n", ["the", "a"]])),
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    text = prompt_text(rng, long)
    if chat:
        body["messages"] = [{"role": "user", "content": text}]
        if rng.random() < 0.2:
            body["response_format"] = {"type": "json_object"}
        if rng.random() < 0.2:
            body["logprobs"] = True
            body["top_logprobs"] = rng.choice([0, 2])
    else:
        body["prompt"] = text
    if body["stream"] and rng.random() < 0.5:
        body["stream_options"] = {"include_usage": True}
    return Case("/v1/chat/completions" if chat else "/v1/completions", body)


def make_case(rng: random.Random, model: str, long_share: float = 0.25) -> Case:
    long = rng.random() < long_share
    return native_case(rng, model, long) if rng.random() < 0.6 else openai_case(rng, model, long)


def _stream_outcome(case: Case, lines: list[str]) -> tuple[bool, str]:
    if case.path.startswith("/api/"):
        objects = [json.loads(line) for line in lines if line.strip()]
        last = objects[-1] if objects else {}
        errors = [o["error"] for o in objects if "error" in o]
        if errors:
            return False, f"in-band error: {errors[0]}"
        return bool(last.get("done")), "" if last.get("done") else "stream ended without done"
    data = [line[6:] for line in lines if line.startswith("data: ")]
    errors = [d for d in data if d != "[DONE]" and "error" in json.loads(d)]
    if errors:
        return False, f"in-band error: {errors[0]}"
    return (data[-1:] == ["[DONE]"]), "" if data[-1:] == ["[DONE]"] else "stream ended without [DONE]"


async def send(http: httpx.AsyncClient, case: Case) -> Outcome:
    try:
        if case.stream:
            async with http.stream("POST", case.path, json=case.body) as response:
                if response.status_code != 200:
                    await response.aread()
                    return Outcome(case, response.status_code, response.status_code < 500, response.text[:300])
                lines = [line async for line in response.aiter_lines()]
            ok, detail = _stream_outcome(case, lines)
            return Outcome(case, 200, ok, detail)
        response = await http.post(case.path, json=case.body)
        return Outcome(case, response.status_code, response.status_code < 500, response.text[:300])
    except httpx.HTTPError as err:
        return Outcome(case, 0, False, f"{type(err).__name__}: {err}")


async def _round(url: str, cases: list[Case]) -> list[Outcome]:
    limits = httpx.Limits(max_connections=len(cases) + 4, max_keepalive_connections=len(cases) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0), limits=limits) as http:
        return await asyncio.gather(*(send(http, case) for case in cases))


def run(url: str, model: str = "tiny", rounds: int = 3, concurrency: int = 32, seed: int = 0,
        long_share: float = 0.25, settle_s: float = 30.0) -> dict[str, Any]:
    """`rounds` rounds of `concurrency` random requests at once; the figures, failures included."""
    rng = random.Random(seed)
    httpx.post(url + "/api/generate", json={"model": model, "prompt": "hi", "stream": False,
                                            "options": {"num_predict": 1}}, timeout=600).raise_for_status()
    out: list[RoundFigures] = []
    for _ in range(rounds):
        cases = [make_case(rng, model, long_share) for _ in range(concurrency)]
        figures = RoundFigures(sent=len(cases))
        for outcome in asyncio.run(_round(url, cases)):
            if not outcome.ok:
                figures.failed += 1
                figures.failures.append({"path": outcome.case.path, "status": outcome.status,
                                         "detail": outcome.detail, "body": _short(outcome.case.body)})
            elif outcome.status == 200:
                figures.completed += 1
            else:
                figures.client_errors += 1
        figures.leaked = settle(url, settle_s)
        out.append(figures)
    return {
        "url": url, "model": model, "rounds": rounds, "concurrency": concurrency, "seed": seed,
        "long_share": long_share, "results": [asdict(r) for r in out],
        "failed_total": sum(r.failed for r in out), "leaked_total": sum(r.leaked for r in out),
    }


def _short(body: dict[str, Any]) -> dict[str, Any]:
    """The body with long prompts cut, for a readable failure report (the word count is kept)."""
    def cut(text: str) -> str:
        return text if len(text) < 200 else f"{text[:60]}... ({len(text.split())} words)"

    out = dict(body)
    if isinstance(out.get("prompt"), str):
        out["prompt"] = cut(out["prompt"])
    if isinstance(out.get("messages"), list):
        out["messages"] = [{**m, "content": cut(m["content"])} for m in out["messages"]]
    return out


def markdown(figures: dict[str, Any]) -> str:
    lines = [f"{figures['concurrency']} mixed requests at once x {figures['rounds']} rounds on "
             f"`{figures['model']}` (seed {figures['seed']}, long prompts {figures['long_share']:.0%})", "",
             "| round | sent | completed | client errors (4xx) | failed | leaked |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(figures["results"], 1):
        lines.append(f"| {i} | {r['sent']} | {r['completed']} | {r['client_errors']} | {r['failed']} | {r['leaked']} |")
    lines += ["", f"failed: {figures['failed_total']}; leaked: {figures['leaked_total']}"]
    for r in figures["results"]:
        for failure in r["failures"]:
            lines.append(f"- {failure['path']} {failure['status']} {failure['detail']}: {json.dumps(failure['body'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz_engine", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running vllama (default: start one on the tiny test model)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=48)
    p.add_argument("--long-share", type=float, default=0.25, help="share of requests with a long prompt")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with ExitStack() as stack:
        url = args.url or _serve_tiny(stack)
        figures = run(url, args.model, args.rounds, args.concurrency, args.seed, args.long_share)
    print(markdown(figures))
    return 0 if figures["failed_total"] == 0 and figures["leaked_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
