"""Assemble the cases of every client in a sensible order, run them, and render the table."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from .core import FAIL, KNOWN, PASS, SKIP, XFAIL, XPASS, Case, Config, Divergence, Report, Result, Target, run_case

CLIENTS = ("raw", "ollama-python", "ollama-python-async", "ollama-js", "openai", "openai-responses", "anthropic",
           "langchain")
STYLE = {PASS: "green", FAIL: "bold red", SKIP: "yellow", XFAIL: "magenta", XPASS: "bold cyan", KNOWN: "blue"}


def build(config: Config, target: Target) -> list[Case]:
    """Raw cases first (they begin from an idle server), then each client, then the unload cases."""
    from . import anthropic_client, js_client, langchain_client, openai_client, py_client, responses_client
    from .raw import RawSuite

    first, last = RawSuite(config, target).cases()
    cases = list(first)
    cases += py_client.cases(config, target)
    cases += js_client.cases(config, target)
    cases += openai_client.cases(config, target)
    cases += responses_client.cases(config, target)
    cases += anthropic_client.cases(config, target)
    cases += langchain_client.cases(config, target)
    cases += last
    if config.clients:
        cases = [c for c in cases if c.client in config.clients]
    if config.match:
        cases = [c for c in cases if config.match in f"{c.client}/{c.name}"]
    return cases


def run(config: Config, on_result: Callable[[Result], None] | None = None) -> Report:
    target = Target(config)
    report = Report()
    try:
        for case in build(config, target):
            result = run_case(case)
            if result.status == FAIL and case.known and isinstance(result.error, Divergence):
                result.status, result.detail = KNOWN, f"{case.known} | {result.detail}"
            report.results.append(result)
            if on_result:
                on_result(result)
    finally:
        target.close()
    return report


def table(report: Report) -> Table:
    t = Table(title="vllama compatibility", show_lines=False, expand=False)
    t.add_column("client", no_wrap=True)
    t.add_column("case", no_wrap=True)
    t.add_column("result", no_wrap=True)
    t.add_column("s", justify="right", no_wrap=True)
    t.add_column("why", overflow="fold")
    for r in report.results:
        t.add_row(r.client, r.case, f"[{STYLE[r.status]}]{r.status}[/]", f"{r.seconds:.1f}", r.detail)
    return t


def summary(report: Report) -> Table:
    t = Table(title="per client")
    t.add_column("client")
    for status in (PASS, FAIL, SKIP, XFAIL, XPASS, KNOWN):
        t.add_column(status, justify="right")
    totals = {s: 0 for s in (PASS, FAIL, SKIP, XFAIL, XPASS, KNOWN)}
    for client, counts in report.counts().items():
        t.add_row(client, *(str(counts[s]) for s in totals))
        for s in totals:
            totals[s] += counts[s]
    t.add_row("[bold]all[/]", *(f"[bold]{totals[s]}[/]" for s in totals))
    return t


def render(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    console.print(table(report))
    console.print(summary(report))
