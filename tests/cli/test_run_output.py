"""How `run` prints a streamed answer (thinking included) and reads its arguments; no server needed."""

from __future__ import annotations

import pytest

from vllama.cli import main
from vllama.cli.http import CLIError
from vllama.cli.run import _Printer, parse_keep_alive, parse_think


def test_printer_shows_thinking_then_the_answer(capsys):
    printer = _Printer(hide_thinking=False)
    for content, thinking in [("", "Let me"), ("", " think."), ("Paris", ""), (".", "")]:
        printer.write(content, thinking)
    printer.finish()
    assert capsys.readouterr().out == "Thinking...\nLet me think.\n...done thinking.\n\nParis.\n"


def test_printer_hides_thinking_and_ends_the_line_once(capsys):
    printer = _Printer(hide_thinking=True)
    printer.write("", "hmm")
    printer.write("Line one\n", "")
    printer.finish()
    assert capsys.readouterr().out == "Line one\n"


def test_keepalive_and_think_values():
    assert parse_keep_alive("5m") == "5m" and parse_keep_alive("-1m") == "-1m" and parse_keep_alive("300") == 300
    with pytest.raises(CLIError, match='missing unit in duration "1.5"'):
        parse_keep_alive("1.5")
    assert parse_think("high") == "high" and parse_think("false") is False and parse_think(None) is None
    with pytest.raises(CLIError):
        parse_think("loud")


def test_prompt_words_around_flags_and_a_negative_keepalive(monkeypatch):
    seen = {}
    monkeypatch.setattr("vllama.cli.run.cmd_run", lambda args: seen.update(vars(args)))
    main(["run", "m", "why", "--verbose", "is", "the", "--keepalive", "-1m", "sky", "blue"])
    assert seen["prompt"] == ["why", "is", "the", "sky", "blue"] and seen["verbose"] and seen["keepalive"] == "-1m"
