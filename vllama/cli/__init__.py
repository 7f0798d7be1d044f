"""The `vllama` command line: `serve`, and Ollama's client commands talking to the server over HTTP."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from ..server import add_serve_args, serve


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one `Error:` line (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"Error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vllama", description="Ollama's API on vLLM: the server and its command line")
    parser.add_argument("-v", "--version", action="store_true", help="show the client's and the server's version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve_parser = sub.add_parser("serve", help="start the server")
    add_serve_args(serve_parser)

    p = sub.add_parser("run", help="run a model: answer a prompt, or chat")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("prompt", metavar="PROMPT", nargs="*", default=[],
                   help="ask this and exit (stdin is read when piped)")
    p.add_argument("--format", choices=["json"], help="response format")
    p.add_argument("--keepalive", metavar="DURATION", help='how long the model stays loaded ("5m", "1h", "-1m")')
    p.add_argument("--verbose", action="store_true", help="print timings and token rates after each answer")
    p.add_argument("--insecure", action="store_true", help="allow an insecure registry when pulling")
    p.add_argument("--nowordwrap", action="store_true", help="accepted for ollama compatibility: never wraps")
    p.add_argument("--think", nargs="?", const="true", metavar="LEVEL",
                   help="thinking: true/false or high/medium/low/max")
    p.add_argument("--hidethinking", action="store_true", help="do not print the thinking text")

    p = sub.add_parser("pull", help="pull a model from the registry (the Hugging Face Hub)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--insecure", action="store_true", help="allow an insecure registry")

    p = sub.add_parser("list", aliases=["ls"], help="list models")
    p.add_argument("filter", metavar="PREFIX", nargs="*", help="only names starting with this")

    sub.add_parser("ps", help="list running models")

    p = sub.add_parser("show", help="show information for a model")
    p.add_argument("model", metavar="MODEL")
    which = p.add_mutually_exclusive_group()
    for name in ("license", "modelfile", "parameters", "template", "system"):
        which.add_argument(f"--{name}", action="store_true", help=f"show the {name}")
    p.add_argument("-v", "--verbose", action="store_true", help="show the metadata and tensors too")

    p = sub.add_parser("rm", help="remove models")
    p.add_argument("models", metavar="MODEL", nargs="+")

    p = sub.add_parser("cp", help="copy a model")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("destination", metavar="DESTINATION")

    p = sub.add_parser("stop", help="stop (unload) a running model")
    p.add_argument("model", metavar="MODEL")

    p = sub.add_parser("create", help="create a model from a local folder, a GGUF, a model or a Modelfile")
    p.add_argument("model", metavar="NAME")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--from", dest="source", metavar="PATH|MODEL",
                     help="a Hugging Face model folder, a .gguf file, or an existing model")
    src.add_argument("-f", "--file", metavar="MODELFILE", help="a Modelfile (default ./Modelfile)")
    p.add_argument("-q", "--quantize", metavar="TYPE", help="not supported: vllama serves weights as they are")
    return parser


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from . import models, run

    handlers = {
        "run": run.cmd_run, "pull": models.cmd_pull, "list": models.cmd_list, "ls": models.cmd_list,
        "ps": models.cmd_ps, "show": models.cmd_show, "rm": models.cmd_rm, "cp": models.cmd_cp,
        "stop": models.cmd_stop, "create": models.cmd_create,
    }
    if args.command is None:
        if args.version:
            models.print_version()
        else:
            parser.print_help()
        return
    handlers[args.command](args)


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--keepalive -1m` is a value (forever), not an option: pass it as `--keepalive=-1m`."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--keepalive" and arg.startswith("-"):
            out[-1] = f"--keepalive={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, extras = parser.parse_known_args(_join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if extras and args.command == "run" and not any(e.startswith("-") for e in extras):
        args.prompt += extras  # prompt words after a flag (`run m --verbose why is the sky blue`)
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command == "serve":
        serve(args)
        return
    from .http import CLIError

    try:
        _dispatch(args, parser)
    except CLIError as err:
        sys.stdout.flush()
        print(f"Error: {err.message}", file=sys.stderr)
        sys.exit(err.code)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `vllama list | head`: the reader went away
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
