"""`python -m bench`: the same streamed workloads against Ollama-API servers and the bare engine.

    # vllama, the engine alone and the user's own Ollama (default and tuned), every workload, one run:
    python -m bench --serve --target ceiling=smollm2:135m --model smollm2:135m --ollama \\
        --workloads raw,chat,multiturn,long,json --concurrency 1,4,16,32
    python -m bench --target vllama=http://127.0.0.1:11434 --target ollama=http://127.0.0.1:11435 \\
        --model smollm2:135m --concurrency 1,4,16,32 --num-predict 64

Levels run in the order given; at each level every workload that runs at it, and within a workload
the targets take turns (the first one rotates), so slow drift of the machine spreads over all of
them. The markdown written (<name>.md) is the README's benchmark section as it stands.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .session import pairs, run_benchmark
from .workload_kinds import KINDS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from vllama.server import add_serve_args

    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", action="append", default=[], metavar="NAME=URL",
                   help="a server speaking Ollama's API; a NAME starting with 'ceiling' takes a model folder or "
                        "store name and runs the engine in-process, and the one named 'ceiling' is the "
                        "reference of the ratio table (repeatable)")
    p.add_argument("--serve", action="store_true",
                   help="start `python -m vllama serve` on a free port as target 'vllama', stop it at the end")
    p.add_argument("--model", help="model name sent to the HTTP targets")
    p.add_argument("--model-for", action="append", default=[], metavar="NAME=MODEL",
                   help="a different model name for one target (e.g. an Ollama tag)")
    p.add_argument("--pid", action="append", default=[], metavar="NAME=PID",
                   help="a target's server process, for CPU accounting (found by its port when local)")
    p.add_argument("--concurrency", default="1,4,16,32", help="comma-separated levels (default 1,4,16,32)")
    p.add_argument("--num-predict", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat-penalty", type=float, default=1.0)
    p.add_argument("--chat", action="store_true", help="the chat workload alone (as --workloads chat)")
    p.add_argument("--workloads", help="comma-separated, of " + ", ".join(KINDS) + " (default raw; see "
                                       "bench/workload_kinds.py)")
    p.add_argument("--levels-for", dest="levels_for_raw", action="append", default=[], metavar="WORKLOAD=C1,C2",
                   help="other concurrency levels for one workload (e.g. long=1,4)")
    p.add_argument("--long-tokens", type=int, default=2000, help="about how many tokens a long prompt has")
    p.add_argument("--turns", type=int, default=4, help="turns per multi-turn conversation (1-6)")
    p.add_argument("--ollama", nargs="?", const="", metavar="PATH",
                   help="start the `ollama` program (PATH, else the one on PATH) twice, at OLLAMA_NUM_PARALLEL=1 "
                        "(ollama-default) and =C (ollama-tuned), on the same weights, in a temporary home")
    p.add_argument("--ollama-gguf", type=Path, metavar="FILE",
                   help="the GGUF the launched Ollama serves (default for smollm2:135m: the embedded model's)")
    p.add_argument("--ollama-tuned", choices=["per-level", "max"], default="per-level",
                   help="ollama-tuned restarted at each level's C (default), or started once at the largest")
    p.add_argument("--no-load-time", dest="load_time", action="store_false",
                   help="skip the load-time probe (first request, then a reload after a keep_alive 0 unload)")
    p.add_argument("--prompts", type=Path, help="prompt set (default bench/prompts.json)")
    p.add_argument("--warmup", type=int, default=1, help="requests per target before measuring (not counted)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each level per target")
    p.add_argument("--pause", type=float, default=1.0, help="seconds of quiet between two measured levels")
    p.add_argument("--settle", type=float, default=10.0,
                   help="seconds of quiet after the targets are set up and warm (default 10)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each level, wait up to this long for 3 s in which other processes use "
                        "under 10 %% of the CPU (for shared machines)")
    p.add_argument("--retry-noisy", type=int, default=0, metavar="N",
                   help="run a level again, up to N more times, while other processes used over 10 %% of the "
                        "CPU during it (every run is kept; the table uses the clean ones)")
    p.add_argument("--http-client", choices=["lean", "httpx"], default="lean",
                   help="streams through bench's lean asyncio client (default; a third of httpx's CPU per "
                        "token, which matters when client and server share 2 cores) or httpx (also for https)")
    p.add_argument("--timeout", type=float, default=600.0, help="per-request timeout, seconds")
    p.add_argument("--ollama-num-parallel", type=int, help="the OLLAMA_NUM_PARALLEL the Ollama target runs with")
    p.add_argument("--out", type=Path, help="output folder (default bench/results/)")
    p.add_argument("--name", help="file stem for the outputs (default bench-<UTC time>)")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="the bench's event loop; uvloop (as under `vllama serve`) when installed")
    p.add_argument("--profile", action="store_true",
                   help="sample each target's serving process with py-spy during every level "
                        "(<name>-<target>-C<c>-<n>.txt; summarise with `python -m bench.profile`); "
                        "the sampler costs the target CPU, so do not quote profiled figures")
    p.add_argument("--no-progress", action="store_true", help="no live display")
    p.add_argument("--report", type=Path, metavar="RUN.json", help="only rebuild the table and plot of a saved run")
    add_serve_args(p)  # engine arguments, exactly as `vllama serve` takes them: for --serve and the ceiling
    args = p.parse_args(argv)
    if args.report:
        return args
    try:
        args.levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency must be comma-separated integers")
    if not args.levels or min(args.levels) < 1:
        p.error("--concurrency needs levels >= 1")
    args.workloads = [w.strip() for w in (args.workloads or ("chat" if args.chat else "raw")).split(",") if w.strip()]
    if not args.workloads or set(args.workloads) - set(KINDS) or len(set(args.workloads)) != len(args.workloads):
        p.error("--workloads takes distinct names among " + ", ".join(KINDS))
    args.levels_for = {w: args.levels for w in args.workloads}
    for name, value in _levels_for(p, args):
        if name not in args.levels_for:
            p.error(f"--levels-for {name}: not among --workloads")
        args.levels_for[name] = value
    args.levels_all = list(args.levels) + sorted({c for v in args.levels_for.values() for c in v} - set(args.levels))
    args.targets = pairs(args.target, "--target")
    names = [n for n, _ in args.targets] + (["vllama"] if args.serve else [])
    if len(set(names)) != len(names):
        p.error("target names must be unique (--serve adds 'vllama')")
    if any(n.startswith("ollama-") for n in names) and args.ollama is not None:
        p.error("--ollama adds targets 'ollama-default' and 'ollama-tuned'")
    if not names and args.ollama is None:
        p.error("give at least one --target, --serve or --ollama")
    if (any(not n.startswith("ceiling") for n in names) or args.ollama is not None) and not args.model:
        p.error("--model is required for HTTP targets")
    args.model_for_ollama = args.model
    return args


def _levels_for(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, list[int]]]:
    out = []
    for name, value in pairs(args.levels_for_raw, "--levels-for"):
        try:
            levels = [int(c) for c in value.split(",") if c.strip()]
        except ValueError:
            p.error("--levels-for takes WORKLOAD=C1,C2")
        if not levels or min(levels) < 1:
            p.error("--levels-for needs levels >= 1")
        out.append((name, levels))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        import json

        from .report import write_all

        run = json.loads(args.report.read_text(encoding="utf-8"))
        paths = write_all(run, args.out or args.report.parent, args.name or args.report.stem)
        print(paths["md"].read_text(), end="")
        return 0

    if args.loop == "uvloop":
        try:  # the ceiling's AsyncLLM then runs on the same loop as vllama's under uvicorn
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            args.loop = "asyncio"
    return asyncio.run(run_benchmark(args))


if __name__ == "__main__":  # vLLM spawns its engine core: entry points need the guard
    sys.exit(main())
