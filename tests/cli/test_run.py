"""`vllama run` on the real engine: one-shot answers, piped stdin, --verbose, and the interactive session
in a real terminal (pexpect), including Ctrl+C in the middle of an answer; then ps and stop."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import httpx
import pexpect
import pytest

from tests.cli.conftest import SHORT_PREDICT, assert_one_error_line, cli_env, vllama
from tests.conftest import ENGINE_ENV, SMOL
from tests.live_server import free_port

pytestmark = pytest.mark.engine
PROMPT = "Tell me about the sea."


def generate(server: str, model: str, prompt: str) -> str:
    r = httpx.post(server + "/api/generate", json={"model": model, "prompt": prompt, "stream": False}, timeout=300)
    r.raise_for_status()
    return r.json()["response"]


def test_one_shot_prompt_streams_the_answer(env, server, short_model):
    result = vllama("run", short_model, *PROMPT.split(), env=env)  # words are joined, as in Ollama
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no spinner, no note: stdout is not a terminal
    assert result.stdout.strip() and result.stdout == generate(server, short_model, PROMPT).rstrip("\n") + "\n"


def test_piped_stdin_is_the_prompt(env, server, short_model):
    piped = vllama("run", short_model, env=env, input=PROMPT)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == vllama("run", short_model, PROMPT, env=env).stdout
    both = vllama("run", short_model, "in one word", env=env, input="Say hello")  # stdin first, then the words
    assert both.stdout == generate(server, short_model, "Say hello in one word").rstrip("\n") + "\n"


def test_verbose_prints_ollamas_metrics(env, short_model):
    result = vllama("run", short_model, "Hi", "--verbose", env=env)
    assert result.returncode == 0, result.stderr
    duration = r"(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)"
    patterns = [rf"total duration: +{duration}", rf"load duration: +{duration}", r"prompt eval count: +\d+ token\(s\)",
                rf"prompt eval duration: +{duration}", r"prompt eval rate: +\d+\.\d\d tokens/s",
                rf"eval count: +{SHORT_PREDICT} token\(s\)", rf"eval duration: +{duration}",
                r"eval rate: +\d+\.\d\d tokens/s"]
    lines = result.stderr.splitlines()
    assert len(lines) == len(patterns) and all(re.fullmatch(p, line) for p, line in zip(patterns, lines)), lines


def test_format_json_is_sent(env, short_model):
    result = vllama("run", short_model, "Give me a JSON object", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def unfinished(server: str, model: str) -> int:
    text = httpx.get(server + "/metrics").text
    m = re.search(rf'vllama_engine_requests_unfinished{{model="{re.escape(model)}"}} (\d+)', text)
    return int(m.group(1)) if m else 0


def spawn(env, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "vllama", "run", *args], env=env, encoding="utf-8", timeout=240,
                          dimensions=(40, 200))
    child.expect_exact(">>> ")
    return child


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ")  # escapes, and the spinner's frames


def screen_text(raw: str) -> str:
    return ANSI.sub("", raw).replace("\r\n", "\n").replace("\r", "")


def command(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Type a line; wait for each expected text, then the next prompt; return what was printed."""
    child.sendline(line)
    child.expect_exact(line + "\r\n")  # the terminal's echo
    printed = ""
    for text in expected:
        child.expect_exact(text)
        printed += child.before + text
    child.expect_exact(">>> ")
    return screen_text(printed + child.before)


def test_interactive_session(env, server, short_model):
    child = spawn(env, short_model)
    command(child, "/set parameter num_predict 5", "Set parameter 'num_predict' to '5'")
    command(child, "/set parameter num_predict five", """Couldn't set parameter: 'invalid int value [five]'""")
    answer = command(child, "Hello there")
    assert answer.strip()
    # """ starts a message over several lines; `... ` prompts for the rest
    child.sendline('"""')
    child.expect_exact("... ")
    child.sendline("first line")
    child.expect_exact("... ")
    child.sendline('second line"""')
    child.expect_exact(">>> ")
    command(child, "/set system You are terse.", "Set system message.")
    command(child, "/set format json", "Set format to 'json' mode.")
    command(child, "/set noformat", "Disabled format.")
    command(child, "/show info", "  Model", "    architecture        llama", "  Capabilities")
    command(child, "/?", "Available Commands:", "/bye", 'Use """ to begin a multi-line message.')
    command(child, "/nonsense", "Unknown command '/nonsense'. Type /? for help")
    # the conversation so far, as the session holds it: /save writes it into a model
    command(child, "/save cli-session", "Created new model 'cli-session'")
    saved = httpx.post(server + "/api/show", json={"model": "cli-session"}).json()
    messages = saved["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "system"]
    assert messages[0]["content"] == "Hello there" and messages[1]["content"] == answer.strip()
    assert messages[2]["content"] == "\nfirst line\nsecond line" and messages[4]["content"] == "You are terse."
    assert "num_predict                    5" in saved["parameters"]
    assert vllama("rm", "cli-session", env=env).returncode == 0
    command(child, "/clear", "Cleared session context")

    # Ctrl+C in the middle of a long answer stops it, closes the request, and keeps the session
    command(child, "/set parameter num_predict 1500", "Set parameter 'num_predict' to '1500'")
    child.sendline(PROMPT)
    child.expect_exact(PROMPT)
    child.expect("\x1b\\[K\\S")  # the spinner gives way to the first piece of the answer
    started = time.monotonic()
    child.sendintr()
    child.expect_exact(">>> ", timeout=20)
    assert time.monotonic() - started < 10  # 1500 tokens take far longer on this engine
    deadline = time.monotonic() + 15
    while unfinished(server, short_model) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unfinished(server, short_model) == 0  # the engine dropped the request
    # Ctrl+C at the prompt only says how to leave
    child.sendintr()
    child.expect_exact("Use Ctrl + d or /bye to exit.")
    child.expect_exact(">>> ")
    command(child, "/set parameter num_predict 3")
    assert command(child, "Still there?").strip()  # the session goes on after the interruption
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_d_leaves_the_session(env, short_model):
    child = spawn(env, short_model)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_interactive_real_model_answers(env):
    child = spawn(env, SMOL)
    command(child, "/set parameter temperature 0")
    command(child, "/set parameter num_predict 24")
    answer = command(child, "What is the capital of France?")
    assert "Paris" in answer
    child.sendline("/bye")
    child.expect(pexpect.EOF)


def test_ps_and_stop(env, short_model):
    assert vllama("run", short_model, "Hi", "--keepalive", "-1m", env=env).returncode == 0
    table = vllama("ps", env=env).stdout.splitlines()
    assert re.fullmatch(r"NAME +ID +SIZE +PROCESSOR +CONTEXT +UNTIL", table[0])
    row = next(line for line in table if line.startswith(short_model + " "))
    assert re.fullmatch(rf"{re.escape(short_model)} +[0-9a-f]{{12}} +\d+(\.\d)? [KMG]B +100% CPU +\d+ +Forever", row)
    assert vllama("run", short_model, "Hi", "--keepalive", "10m", env=env).returncode == 0
    row = next(line for line in vllama("ps", env=env).stdout.splitlines() if line.startswith(short_model + " "))
    assert re.search(r" (9|10) minutes from now$", row)
    stopped = vllama("stop", short_model, env=env)
    assert stopped.returncode == 0 and stopped.stdout == stopped.stderr == ""
    assert short_model not in vllama("ps", env=env).stdout


def test_run_errors(env):
    assert_one_error_line(vllama("run", "tiny", "hi", "--think", "maybe", env=env), 'invalid --think value "maybe"')


def test_run_starts_a_server_when_none_answers(models_dir, short_model, home):
    """Right after install nothing is running: `vllama run MODEL PROMPT` starts `vllama serve` itself."""
    port = free_port()
    env = cli_env(f"127.0.0.1:{port}", home, VLLAMA_MODELS=str(models_dir), HF_HUB_OFFLINE="1", **ENGINE_ENV)
    del env["VLLAMA_NO_AUTOSTART"]
    pid_file = home / ".vllama" / "serve.pid"
    try:
        result = vllama("run", short_model, "Hello", env=env, timeout=400)
        assert result.returncode == 0, result.stderr
        assert result.stderr.startswith(f"Started a vllama server in the background on http://127.0.0.1:{port}")
        assert result.stdout.strip()
    finally:
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
