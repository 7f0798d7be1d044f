"""Thinking split at the markers on the real engine while the request has stop strings.

With stop strings vLLM's detokenizer holds back the last (longest stop - 1) characters of the text
until the request ends, while the token ids come at once; vLLM's deepseek_r1 parser finds the markers
by id and cuts the text, so the split landed in the wrong place (`thinking` "<think>anuary…", content
"t</think>…"). The tiny Llama with `<think>`/`</think>` tokens (test_format_after_thinking_engine) and
a logits processor that writes the markup: `<think>` first, `</think>` after THOUGHT_TOKENS tokens,
then an answer without markers that runs to num_predict. Stop strings that never match leave the
tokens as they are, so the same request splits the same way with and without them.
"""

from __future__ import annotations

import json

import pytest

from tests.engine.test_format_after_thinking_engine import THINK_CLOSE, THINK_OPEN, served_thinking_tiny

pytestmark = pytest.mark.engine

THOUGHT_TOKENS = 6
NAME = "thinky-stops"
# never in this model's output; the longest makes vLLM hold back 23 characters of text
STOPS = ["<|im_start|>", "never said, never matched"]

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from tests.engine.thinking_processors import ThinkThenAnswer  # imports vLLM: not at collection

    with served_thinking_tiny(tmp_path_factory, NAME, ThinkThenAnswer) as test_client:
        yield test_client


def chat(client, stop: list[str], stream: bool) -> tuple[str, str]:
    body = {"model": NAME, "messages": [{"role": "user", "content": "Think, then answer."}], "think": True,
            "stream": stream, "options": {"temperature": 0, "num_predict": 32, "stop": stop}}
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert not any("error" in line for line in lines), lines
    messages = [line["message"] for line in lines]
    return "".join(m.get("thinking", "") for m in messages), "".join(m.get("content", "") for m in messages)


def test_stop_strings_do_not_move_the_split(client):
    """The same greedy tokens with and without stop strings: the same split, streamed or not."""
    plain = chat(client, [], stream=False)
    thinking, content = plain
    assert thinking.strip() and content.strip()
    for text in plain:
        assert THINK_OPEN not in text and THINK_CLOSE not in text
    assert chat(client, STOPS, stream=False) == plain
    assert chat(client, STOPS, stream=True) == plain
    [entry] = client.app.state.scheduler.loaded()
    assert entry.runner.reasoning_parser == "deepseek_r1"  # vLLM's token-id parser, the one that was misled
