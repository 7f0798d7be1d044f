"""`vllama run`: a one-shot answer (/api/generate), or Ollama's interactive chat (/api/chat)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ..config import parse_go_duration
from .display import Spinner, metrics_summary, show_info
from .http import CLIError, Client, ResponseError, connect, state_dir
from .models import pull_model
from .modelfile import ParameterError, parse_parameter

THINK_VALUES = ("true", "false", "high", "medium", "low", "max")

HELP = '''Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use """ to begin a multi-line message.
'''

HELP_SET = '''Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking
'''

HELP_SHOW = '''Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template
'''

HELP_SHORTCUTS = '''Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit (/bye)
'''

HELP_PARAMETERS = '''Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter stop <string> <string> ...   Set the stop parameters
'''


def parse_think(value: str | None) -> bool | str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in THINK_VALUES:
        raise CLIError(f'invalid --think value "{value}" (must be true, false, high, medium, low or max)')
    return {"true": True, "false": False}.get(lowered, lowered)


def parse_keep_alive(value: str | None) -> str | int | None:
    """Ollama's --keepalive is a Go duration ("5m", "1h", "-1m"); bare numbers are taken as seconds."""
    if value is None:
        return None
    if re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    try:
        parse_go_duration(value.strip())
    except ValueError as err:
        raise CLIError(f"invalid --keepalive: {err}") from None
    return value.strip()


@dataclass
class Session:
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    format: str | None = None
    keep_alive: str | int | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False
    system: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    history: bool = True

    def fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "stream": True}
        if self.options:
            body["options"] = dict(self.options)
        if self.format:
            body["format"] = self.format
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        if self.think is not None:
            body["think"] = self.think
        return body


class _Printer:
    """Writes answer text (and thinking, unless hidden) to stdout as it streams in."""

    def __init__(self, hide_thinking: bool):
        self.hide_thinking = hide_thinking
        self.thinking = False
        self.last = ""
        self.out = sys.stdout
        self.dim = self.out.isatty()

    def write(self, content: str, thinking: str) -> None:
        if thinking and not self.hide_thinking:
            if not self.thinking:
                self._emit("\x1b[2mThinking...\n" if self.dim else "Thinking...\n")
                self.thinking = True
            self._emit(thinking)
        if content:
            self.end_thinking()
            self._emit(content)
        self.out.flush()

    def end_thinking(self) -> None:
        if self.thinking:
            self._emit("\n...done thinking.\x1b[0m\n\n" if self.dim else "\n...done thinking.\n\n")
            self.thinking = False

    def _emit(self, text: str) -> None:
        self.out.write(text)
        self.last = text or self.last

    def finish(self) -> None:
        self.end_thinking()
        if self.last and not self.last.endswith("\n"):
            self.out.write("\n")
        self.out.flush()


def stream_answer(client: Client, path: str, body: dict[str, Any], hide_thinking: bool
                  ) -> tuple[str, dict[str, Any] | None, bool]:
    """Stream an answer to stdout: (content, the final chunk, whether Ctrl+C stopped it).

    Ctrl+C closes the stream, so the HTTP connection goes and the server aborts the request."""
    printer = _Printer(hide_thinking)
    spinner = Spinner().start()
    chunks = client.stream(path, body)
    content: list[str] = []
    final = None
    interrupted = False
    try:
        for chunk in chunks:
            spinner.stop()
            if "message" in chunk:
                message = chunk.get("message") or {}
                piece, thinking = message.get("content") or "", message.get("thinking") or ""
            else:
                piece, thinking = chunk.get("response") or "", chunk.get("thinking") or ""
            printer.write(piece, thinking)
            content.append(piece)
            if chunk.get("done"):
                final = chunk
    except KeyboardInterrupt:
        interrupted = True
    finally:
        spinner.stop()
        chunks.close()
        printer.finish()
    return "".join(content), final, interrupted


def ensure_model(client: Client, name: str, insecure: bool = False) -> dict[str, Any]:
    """/api/show; a model that is not here is pulled first, as `ollama run` does."""
    try:
        return client.json("POST", "/api/show", {"model": name})
    except ResponseError as err:
        if err.status != 404:
            raise
    pull_model(client, name, insecure)
    return client.json("POST", "/api/show", {"model": name})


def load_model(client: Client, session: Session) -> None:
    body = {k: v for k, v in session.fields().items() if k in ("model", "keep_alive", "options")}
    with Spinner():
        client.json("POST", "/api/generate", body)


def cmd_run(args: argparse.Namespace) -> None:
    session = Session(model=args.model, format=args.format or None, keep_alive=parse_keep_alive(args.keepalive),
                      think=parse_think(args.think), hide_thinking=args.hidethinking, verbose=args.verbose)
    parts = list(args.prompt)
    stdin_tty = sys.stdin.isatty()
    if not stdin_tty:
        piped = sys.stdin.read()
        if piped:
            parts = [piped, *parts]
    interactive = stdin_tty and not parts
    client = connect()
    ensure_model(client, args.model, args.insecure)
    if not interactive:
        prompt = " ".join(parts)
        if not prompt.strip():  # nothing to ask: load the model, as ollama does
            load_model(client, session)
            return
        _, final, interrupted = stream_answer(client, "/api/generate", {**session.fields(), "prompt": prompt},
                                              session.hide_thinking)
        if interrupted:
            raise KeyboardInterrupt
        if session.verbose and final:
            print(metrics_summary(final), file=sys.stderr)
        return
    load_model(client, session)
    Repl(client, session).loop()


# -- the interactive session -------------------------------------------------------------------------

class Repl:
    def __init__(self, client: Client, session: Session):
        self.client = client
        self.s = session
        self.readline: Any = None
        self.history_path = state_dir() / "history"
        if os.environ.get("OLLAMA_NOHISTORY", "").strip().lower() not in ("", "0", "false"):
            self.s.history = False

    # input ---------------------------------------------------------------------------------------
    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # no line editing; input() still works
            return
        self.readline = readline
        if self.s.history:
            try:
                readline.read_history_file(self.history_path)
            except OSError:
                pass

    def _save_history(self) -> None:
        if self.readline is None or not self.s.history:
            return
        try:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.set_history_length(1000)
            self.readline.write_history_file(self.history_path)
        except OSError:
            pass

    def loop(self) -> None:
        self._setup_readline()
        try:
            self._loop()
        finally:
            self._save_history()

    def _loop(self) -> None:
        multiline: str | None = None  # "prompt" or "system" while inside """ ... """
        buffer: list[str] = []
        while True:
            try:
                line = input("... " if multiline else ">>> ")
            except EOFError:  # Ctrl+D
                print()
                return
            except KeyboardInterrupt:  # Ctrl+C at the prompt drops the line, never the session
                print("\nUse Ctrl + d or /bye to exit.")
                multiline, buffer = None, []
                continue
            if multiline:
                before, closed = _cut_suffix(line, '"""')
                buffer.append(before)
                if not closed:
                    continue
                text, kind = "\n".join(buffer), multiline
                multiline, buffer = None, []
                if kind == "system":
                    self.set_system(text)
                else:
                    self.send(text)
                continue
            if line.startswith('"""'):
                rest, closed = _cut_suffix(line[3:], '"""')
                if closed:
                    self.send(rest)
                else:
                    multiline, buffer = "prompt", [rest]
                continue
            if line.startswith("/"):
                result = self.command(line)
                if result == "exit":
                    return
                if isinstance(result, tuple):  # `/set system """...`: more lines follow
                    multiline, buffer = result
                continue
            if line.strip():
                self.send(line)

    # a turn --------------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        self.s.messages.append({"role": "user", "content": text})
        body = {**self.s.fields(), "messages": list(self.s.messages)}
        try:
            content, final, interrupted = stream_answer(self.client, "/api/chat", body, self.s.hide_thinking)
        except CLIError as err:
            self.s.messages.pop()
            print(f"Error: {err.message}", file=sys.stderr)
            return
        if content:
            self.s.messages.append({"role": "assistant", "content": content})
        else:  # nothing came back (stopped at once): forget the question, keep roles alternating
            self.s.messages.pop()
        print()
        if self.s.verbose and final and not interrupted:
            print(metrics_summary(final) + "\n", file=sys.stderr)

    def set_system(self, text: str) -> None:
        self.s.system = text
        message = {"role": "system", "content": text}
        if self.s.messages and self.s.messages[-1]["role"] == "system":
            self.s.messages[-1] = message
        else:
            self.s.messages.append(message)
        print("Set system message.")

    # slash commands -----------------------------------------------------------------------------
    def command(self, line: str) -> Any:
        args = line.split()
        name = args[0]
        if name in ("/bye", "/exit"):
            return "exit"
        if name in ("/?", "/help"):
            topic = args[1] if len(args) > 1 else ""
            print({"set": HELP_SET, "/set": HELP_SET, "show": HELP_SHOW, "/show": HELP_SHOW,
                   "shortcut": HELP_SHORTCUTS, "shortcuts": HELP_SHORTCUTS}.get(topic, HELP))
            return None
        if name == "/clear":
            self.s.messages = [{"role": "system", "content": self.s.system}] if self.s.system else []
            print("Cleared session context")
            return None
        if name == "/set":
            return self.cmd_set(line, args)
        if name == "/show":
            self.cmd_show(args)
            return None
        if name == "/load":
            self.cmd_load(args)
            return None
        if name == "/save":
            self.cmd_save(args)
            return None
        print(f"Unknown command '{name}'. Type /? for help")
        return None

    def cmd_set(self, line: str, args: list[str]) -> Any:
        if len(args) < 2:
            print(HELP_SET)
            return None
        what = args[1]
        s = self.s
        if what == "parameter":
            if len(args) < 4:
                print(HELP_PARAMETERS)
                return None
            key, values = args[2], args[3:]
            try:
                s.options[key] = parse_parameter(key, values)
            except ParameterError as err:
                print(f"Couldn't set parameter: {str(err)!r}")
                return None
            print(f"Set parameter '{key}' to '{', '.join(values)}'")
        elif what == "system":
            if len(args) < 3:
                print(HELP_SET)
                return None
            text = line.split(None, 2)[2]
            if text.startswith('"""'):
                text, closed = _cut_suffix(text[3:], '"""')
                if not closed:
                    return ("system", [text])
            self.set_system(text)
        elif what == "format":
            if len(args) < 3 or args[2] != "json":
                print("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                s.format = "json"
                print("Set format to 'json' mode.")
        elif what == "noformat":
            s.format = None
            print("Disabled format.")
        elif what in ("verbose", "quiet"):
            s.verbose = what == "verbose"
            print(f"Set '{what}' mode.")
        elif what in ("history", "nohistory"):
            s.history = what == "history"
            print("History enabled." if s.history else "History disabled.")
        elif what in ("wordwrap", "nowordwrap"):
            print("Set 'wordwrap' mode." if what == "wordwrap" else "Set 'nowordwrap' mode.")
        elif what in ("think", "nothink"):
            s.think = what == "think"
            print("Set 'think' mode." if s.think else "Set 'nothink' mode.")
        else:
            print(f"Unknown command '/set {what}'. Type /? for help")
        return None

    def _show(self) -> dict[str, Any] | None:
        try:
            return self.client.json("POST", "/api/show", {"model": self.s.model})
        except CLIError as err:
            print(f"error: couldn't get model: {err.message}")
            return None

    def cmd_show(self, args: list[str]) -> None:
        if len(args) < 2:
            print(HELP_SHOW)
            return
        what = args[1]
        if what not in ("info", "license", "modelfile", "parameters", "system", "template"):
            print(f"Unknown command '/show {what}'. Type /? for help")
            return
        resp = self._show()
        if resp is None:
            return
        if what == "info":
            sys.stdout.write(show_info(resp))
        elif what == "license":
            print(resp.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            print(resp.get("modelfile", ""))
        elif what == "parameters":
            if self.s.options:
                print("User defined parameters:")
                for key, value in self.s.options.items():
                    print(f"{key:<30} {value}")
                print()
            if resp.get("parameters"):
                print("Model defined parameters:")
                print(resp["parameters"])
            elif not self.s.options:
                print("No parameters were specified for this model.")
        elif what == "system":
            text = self.s.system or resp.get("system")
            print(text + "\n" if text else "No system message was specified for this model.")
        elif what == "template":
            print(resp.get("template") or "No prompt template was specified for this model.")

    def cmd_load(self, args: list[str]) -> None:
        if len(args) != 2:
            print("Usage:\n  /load <modelname>")
            return
        previous = (self.s.model, self.s.messages)
        self.s.model, self.s.messages = args[1], []
        print(f"Loading model '{args[1]}'")
        try:
            load_model(self.client, self.s)
        except CLIError as err:
            self.s.model, self.s.messages = previous
            if "not found" in err.message:
                print(f"Couldn't find model '{args[1]}'")
            else:
                print(f"Error: {err.message}", file=sys.stderr)

    def cmd_save(self, args: list[str]) -> None:
        if len(args) != 2:
            print("Usage:\n  /save <modelname>")
            return
        body: dict[str, Any] = {"model": args[1], "from": self.s.model, "stream": False}
        if self.s.system:
            body["system"] = self.s.system
        if self.s.options:
            body["parameters"] = self.s.options
        if self.s.messages:
            body["messages"] = self.s.messages
        try:
            self.client.json("POST", "/api/create", body)
        except CLIError as err:
            if "invalid model name" in err.message:
                print(f"error: The model name '{args[1]}' is invalid")
            else:
                print(f"Error: {err.message}", file=sys.stderr)
            return
        print(f"Created new model '{args[1]}'")


def _cut_suffix(text: str, suffix: str) -> tuple[str, bool]:
    return (text[: -len(suffix)], True) if text.endswith(suffix) else (text, False)
