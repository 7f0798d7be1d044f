"""python -m compat --url URL --model NAME [--embed-model NAME] [--against URL] [--pull-model NAME]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from .core import Config, Result
from .suite import CLIENTS, STYLE, render, run


def parse_args(argv: list[str] | None = None) -> tuple[Config, bool]:
    p = argparse.ArgumentParser(prog="python -m compat", description=(
        "Drive real Ollama clients (ollama-python, ollama-js, openai, langchain-ollama) and raw HTTP "
        "requests replayed from Ollama's recorded answers against a live vllama."))
    p.add_argument("--url", required=True, help="the vllama under test, e.g. http://127.0.0.1:11434")
    p.add_argument("--model", required=True, help="a generation model the server has")
    p.add_argument("--embed-model", help="an embedding model the server has (embedding cases skip without)")
    p.add_argument("--against", metavar="URL", help="a real Ollama: send every raw case to both, report divergences")
    p.add_argument("--pull-model", help="a model that can really be pulled (needs the registry; else skipped)")
    p.add_argument("--golden", metavar="DIR", help="Ollama's recorded exchanges "
                   "(default: $VLLAMA_GOLDEN_DIR, else shared/reference/ollama-golden next to the checkout)")
    p.add_argument("--num-predict", type=int, default=8, help="tokens per generation (default 8)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default 600)")
    p.add_argument("--clients", default="", help=f"comma-separated subset of: {', '.join(CLIENTS)}")
    p.add_argument("-k", dest="match", default="", help="only cases whose client/case contains this")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the table")
    a = p.parse_args(argv)
    clients = tuple(c.strip() for c in a.clients.split(",") if c.strip())
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        p.error(f"unknown clients: {', '.join(sorted(unknown))}")
    return Config(url=a.url, model=a.model, embed_model=a.embed_model, against=a.against, pull_model=a.pull_model,
                  golden_dir=Path(a.golden) if a.golden else None, num_predict=a.num_predict, timeout=a.timeout, clients=clients,
                  match=a.match), a.quiet


def main(argv: list[str] | None = None) -> int:
    config, quiet = parse_args(argv)
    progress = Console(stderr=True)

    def show(r: Result) -> None:
        if not quiet:
            progress.print(f"[{STYLE[r.status]}]{r.status:5}[/] {r.client}/{r.case} ({r.seconds:.1f}s)",
                           highlight=False)

    report = run(config, on_result=show)
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)  # a log or a pipe: keep the reasons readable
    render(report, out)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
