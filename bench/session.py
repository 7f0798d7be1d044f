"""One benchmark run: set the targets up, warm them, measure every level, account the CPU, write the outputs."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .machine import NOISY_FOREIGN_SHARE, Snapshot, cpu_usage, machine_facts
from .memory import PeakMemory
from .profile import sampling
from .report import markdown, write_all
from .stats import level_summary, per_thousand
from .workload import Workload, load_prompts, run_level, warm_up

RESULTS = Path(__file__).with_name("results")


def pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SystemExit(f"{what} must be NAME=VALUE, got {item!r}")
        out.append((name, value))
    return out


class Display:
    """A live progress bar per level (rich), and one summary line when a level ends."""

    def __init__(self, enabled: bool):
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[tok_s]:>7.1f} tok/s  errors {task.fields[errors]}"), TimeElapsedColumn(),
            console=self.console, refresh_per_second=2, disable=not enabled,
        )

    def __enter__(self) -> Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def level(self, name: str, concurrency: int, total: int):
        task = self.progress.add_task(f"{name} C={concurrency}", total=total, tok_s=0.0, errors=0)
        started = time.perf_counter()
        tokens = errors = 0

        def on_result(record: dict[str, Any]) -> None:
            nonlocal tokens, errors
            tokens += record["eval_count"]
            errors += bool(record["error"])
            tok_s = tokens / max(time.perf_counter() - started, 1e-9)
            self.progress.update(task, advance=1, tok_s=tok_s, errors=errors)

        return on_result

    def done(self, level: dict[str, Any]) -> None:
        s, cpu = level["summary"], level["cpu"]
        noisy = " [bold red]noisy[/]" if cpu["noisy"] else ""
        self.console.print(
            f"{level['target']:>10} C={level['concurrency']:<3} {s['tok_s']:7.1f} tok/s  "
            f"TTFT p50 {_s(s['ttft_s']['p50'])}  latency p95 {_s(s['latency_s']['p95'])}  "
            f"errors {s['errors']}/{s['requests']}  foreign CPU {100 * cpu['foreign']:.1f} %{noisy}")

    def say(self, text: str) -> None:
        self.console.print(text)


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} s"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _overall_cpu(levels: list[dict[str, Any]]) -> dict[str, Any]:
    shares = [lvl["cpu"]["foreign"] for lvl in levels]
    weights = [lvl["cpu"]["seconds"] for lvl in levels]
    mean = sum(s * w for s, w in zip(shares, weights)) / sum(weights) if sum(weights) else None
    return {"foreign_mean": mean, "foreign_max": max(shares) if shares else None,
            "noisy": any(lvl["cpu"]["noisy"] for lvl in levels), "noisy_threshold": NOISY_FOREIGN_SHARE}


def serve_argv(args: argparse.Namespace) -> list[str]:
    """The engine flags given to the bench, passed on to `vllama serve` unchanged."""
    from vllama.engine.args import COMMON_ARGS

    out: list[str] = []
    for flag, (name, kind) in COMMON_ARGS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if kind is bool:
            out.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            out += [f"--{flag}", str(value)]
    for item in args.engine_arg:
        out += ["--engine-arg", item]
    if args.engine_layout:
        out += ["--engine-layout", args.engine_layout]
    return out


def build_targets(args: argparse.Namespace, served: dict[str, Any] | None) -> list[Any]:
    from vllama.server import settings_from_args

    from .ceiling import CeilingTarget
    from .machine import listening_pid
    from .workload import HttpTarget

    models = dict(pairs(args.model_for, "--model-for"))
    pids = {n: int(v) for n, v in pairs(args.pid, "--pid")}
    max_c = max(args.levels_all) + 4
    targets: list[Any] = []
    entries = list(args.targets) + ([("vllama", served["url"])] if served else [])
    for name, value in entries:
        if name.startswith("ceiling"):
            targets.append(CeilingTarget(name, value, settings_from_args(args)))
            continue
        target = HttpTarget(name, value, models.get(name, args.model), args.timeout, max_connections=max_c,
                            http_client=args.http_client)
        target.pid = pids.get(name) or (served["pid"] if served and name == "vllama" else None)
        if target.pid is None and target.port and target.url.split("//")[-1].split(":")[0] in (
                "127.0.0.1", "localhost", "[::1]"):
            target.pid = listening_pid(target.port)
        targets.append(target)
    return targets


async def wait_for_quiet(groups: dict[str, list[int]], limit_s: float, window_s: float = 3.0) -> float:
    """On a shared machine: wait (at most `limit_s`) for 3 s in which others use under 10 % of the CPU."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = Snapshot.take()
        await asyncio.sleep(window_s)
        if not cpu_usage(before, Snapshot.take(), groups)["noisy"]:
            break
    return round(time.monotonic() - started, 1)


async def _measure(run: dict[str, Any], targets: list[Any], workloads: list[Workload], args: argparse.Namespace,
                   display: Display, memory: PeakMemory) -> None:
    """Levels in order; at each, every workload that runs at it; within, the targets take turns."""
    step = 0
    for c in args.levels_all:
        for workload in [w for w in workloads if c in args.levels_for[w.kind]]:
            for rep in range(args.repeat):
                order = targets[step % len(targets):] + targets[:step % len(targets)]
                step += 1
                for target in order:
                    if await target.prepare(c):  # an Ollama at another slot count: restarted, so warm it again
                        display.say(f"{target.name} restarted for C={c}")
                        run["restarts"].append({"target": target.name, "concurrency": c,
                                                "warmup": await _warm(target, workloads, args)})
                        await asyncio.sleep(args.settle)
                    for attempt in range(1 + args.retry_noisy):
                        level = await _one_level(target, targets, workload, c, args, display, memory)
                        level.update(repeat=rep, attempt=attempt)
                        run["levels"].append(level)
                        display.done(level)
                        if not level["cpu"]["noisy"]:
                            break


async def _one_level(target: Any, targets: list[Any], workload: Workload, c: int, args: argparse.Namespace,
                     display: Display, memory: PeakMemory) -> dict[str, Any]:
    await asyncio.sleep(args.pause)
    groups = {t.name: t.pids() for t in targets}
    groups["bench"] = [os.getpid()]
    waited = await wait_for_quiet(groups, args.wait_quiet)
    on_result = display.level(f"{target.name} {workload.kind}", c, workload.n_records(c))
    pid = os.getpid() if target.kind == "ceiling" else target.pid  # the process running the front end
    profile = args.out_dir / f"{args.stem}-{target.name}-{workload.kind}-C{c}-{len(args.profiles)}.txt"
    tag = workload.next_tag(target.name, c)
    memory.level_peaks()  # from here on: this level's peaks
    with sampling(pid if args.profile else None, profile) as profiled:
        before = Snapshot.take()
        records, wall = await run_level(target, workload, c, on_result, tag)
        after = Snapshot.take()
    if profiled:
        args.profiles.append(profile.name)
    cpu = cpu_usage(before, after, groups)
    summary = level_summary(records, wall)
    # the ceiling's front end (tokenising, detokenising, the output handler) runs in this process
    cpu_s = cpu["cpu_s"].get(target.name, 0.0) + (cpu["cpu_s"]["bench"] if target.kind == "ceiling" else 0.0)
    summary["cpu_s"] = round(cpu_s, 3)
    summary["cpu_s_per_1k"] = per_thousand(cpu_s, summary["tokens"])
    summary["peak_rss"] = memory.level_peaks().get(target.name)
    return {"target": target.name, "workload": workload.kind, "concurrency": c, "tag": tag, "wall_s": wall,
            "summary": summary, "cpu": cpu, "loadavg": list(os.getloadavg()),
            "num_parallel": getattr(target, "num_parallel", None) if target.kind == "http" else None,
            "waited_for_quiet_s": waited, "profile": profile.name if profiled else None, "requests": records}


async def _warm(target: Any, workloads: list[Workload], args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for workload in workloads:
        warm = await warm_up(target, workload, args.warmup)
        out[workload.kind] = warm
        if warm and all(r["error"] for r in warm):
            raise RuntimeError(f"{target.name}: {workload.kind} warm-up failed: {warm[-1]['error']}")
    return out


def _ollama_targets(args: argparse.Namespace, stack: ExitStack, display: Display) -> tuple[list[Any], dict[str, Any]]:
    """The two Ollama configurations of `--ollama`, or none and the reason the report gives."""
    if args.ollama is None:
        return [], {"measured": False, "reason": "not requested (run with --ollama [PATH])"}
    from .ollama_server import OllamaTarget, find_ollama, gguf_for, temporary_home

    program = find_ollama(args.ollama or None)
    if program is None:
        return [], {"measured": False, "reason": f"no ollama program found ({args.ollama or 'ollama on PATH'})"}
    home = Path(stack.enter_context(temporary_home()))
    model = args.model_for_ollama
    try:
        display.say(f"finding the GGUF for {model} ...")
        gguf = gguf_for(model, args.ollama_gguf, home / "gguf")
    except Exception as err:
        return [], {"measured": False, "reason": f"no GGUF for Ollama: {err}", "program": program}
    http = {"timeout": args.timeout, "http_client": args.http_client, "max_connections": max(args.levels_all) + 4}
    tuned = max(args.levels_all) if args.ollama_tuned == "max" else None
    targets = [OllamaTarget(name, program, home, model, gguf, parallel, args.out_dir / f"{args.stem}-{name}.log",
                            first_level=min(args.levels_all), **http)
               for name, parallel in (("ollama-default", 1), ("ollama-tuned", tuned))]
    return targets, {"measured": True, "program": program, "gguf": gguf.name, "tuned": args.ollama_tuned}


async def _set_up(target: Any, run: dict[str, Any], workloads: list[Workload], args: argparse.Namespace,
                  served: dict[str, Any] | None) -> None:
    from . import load_time

    info = await target.setup()
    if served and target.name == "vllama":
        from vllama import __version__

        info["serve_command"] = served["command"]
        info["version"] = f"vllama {__version__} (/api/version {info['version']})"
        info["server_start_s"] = served["start_s"]
    run["targets"][target.name] = info
    if target.kind == "ceiling":
        run["load"][target.name] = {"engine_start_s": info.get("engine_start_s")}
    elif args.load_time:
        run["load"][target.name] = {"server_start_s": info.get("server_start_s"),
                                    **await load_time.measure(target.client, target.model)}
    run["warmup"][target.name] = await _warm(target, workloads, args)


async def run_benchmark(args: argparse.Namespace) -> int:
    from .serve import served_vllama

    prompts = load_prompts(args.prompts)
    workloads = [Workload(prompts, num_predict=args.num_predict, temperature=args.temperature, seed=args.seed,
                          repeat_penalty=args.repeat_penalty, kind=kind, long_tokens=args.long_tokens,
                          turns=args.turns) for kind in args.workloads]
    out_dir = args.out or RESULTS
    stem = args.name or "bench-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    args.out_dir, args.stem, args.profiles = out_dir, stem, []
    out_dir.mkdir(parents=True, exist_ok=True)
    run: dict[str, Any] = {
        "tool": "python -m bench", "argv": sys.argv[1:], "started_at": _now(), "machine": machine_facts(),
        "workload": {"options": workloads[0].options(), "concurrency": args.levels, "warmup": args.warmup,
                     "repeat": args.repeat, "chat": args.workloads == ["chat"]},
        "workloads": {w.kind: {**w.describe(), "concurrency": args.levels_for[w.kind]} for w in workloads},
        "ollama_num_parallel": args.ollama_num_parallel, "event_loop": args.loop, "targets": {}, "warmup": {},
        "load": {}, "restarts": [], "levels": [],
    }
    display = Display(enabled=not args.no_progress)
    status = 0
    # SIGTERM (and SIGINT, through asyncio.run) cancel the run: the servers it started are stopped, and
    # what was measured is still written.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    memory = PeakMemory()
    targets: list[Any] = []
    try:
        with ExitStack() as stack, memory:
            served = stack.enter_context(served_vllama(serve_argv(args), out_dir / f"{stem}-serve.log")) \
                if args.serve else None
            if served:
                display.say(f"vllama serve up at {served['url']} (pid {served['pid']})")
            targets = build_targets(args, served)
            ollamas, run["ollama"] = _ollama_targets(args, stack, display)
            if not run["ollama"]["measured"]:
                display.say(f"[bold yellow]Ollama columns not measured:[/] {run['ollama']['reason']}")
            try:
                for target in list(targets):
                    display.say(f"setting up {target.name} ...")
                    await _set_up(target, run, workloads, args, served)
                    memory.track(target.name, _roots(target))
                for target in ollamas:
                    display.say(f"setting up {target.name} ...")
                    try:
                        await _set_up(target, run, workloads, args, served)
                    except Exception as err:  # the rest of the run goes on without Ollama
                        run["ollama"] = {**run["ollama"], "measured": False,
                                         "reason": f"{target.name} failed to start: {type(err).__name__}: {err}"}
                        display.say(f"[bold red]Ollama columns not measured:[/] {run['ollama']['reason']}")
                        break
                    targets.append(target)
                    memory.track(target.name, _roots(target))
                targets = [t for t in targets if t not in ollamas or run["ollama"]["measured"]]
                if not targets:
                    raise RuntimeError("no target to measure")
                await asyncio.sleep(args.settle)  # a model load's aftermath must not land in the first level
                with display:
                    await _measure(run, targets, workloads, args, display, memory)
            finally:
                for target in dict.fromkeys(targets + ollamas):  # each once, every one even if one fails
                    try:
                        await target.close()
                    except Exception as err:
                        display.say(f"[bold red]closing {target.name} failed:[/] {err}")
    except (KeyboardInterrupt, asyncio.CancelledError):
        display.say("[bold red]interrupted[/]")
        status = 130
    except Exception as err:
        display.say(f"[bold red]benchmark failed:[/] {type(err).__name__}: {err}")
        status = 1
    run["finished_at"] = _now()
    run["memory"] = {"peak_rss": memory.peaks()}
    if run["levels"]:
        run["cpu"] = _overall_cpu(run["levels"])
        paths = write_all(run, out_dir, stem)
        print(markdown(run), end="")
        display.say("wrote " + ", ".join(str(p) for p in paths.values()))
        if any(lvl["summary"]["errors"] for lvl in run["levels"]) and status == 0:
            status = 3
    return status


def _roots(target: Any):
    """The processes a target's memory is counted over (bench/memory.py)."""
    if target.kind == "ceiling":
        return lambda: (target.pids(), [os.getpid()])
    return lambda: (target.pids(), [])
