"""The `vllama` command line."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .server import add_serve_args, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vllama", description="Ollama's API on vLLM")
    parser.add_argument("--version", action="version", version=f"vllama {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="start the server")
    add_serve_args(serve_parser)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args)
    else:
        parser.print_help()
        sys.exit(2)


if __name__ == "__main__":
    main()
