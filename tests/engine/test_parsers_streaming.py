"""vLLM's reasoning and tool parsers fed token by token through the reply writer: thinking and tool
calls arrive over the stream, not at its end (a real tokenizer with the markers as tokens)."""

from __future__ import annotations

import pytest

from tests.fixtures import tiny_llama_dir
from vllama.engine.base import Chunk
from vllama.engine.parsers import ReasoningStream, ThinkingSplitter, reasoning_parser_name, tool_parser_name
from vllama.serving.replies import ReplyShape, ReplyWriter

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir()))
    tok.add_special_tokens({"additional_special_tokens": ["<think>", "</think>", "<tool_call>", "</tool_call>"]})
    return tok


def stream(writer: ReplyWriter, tokenizer, text: str) -> list[tuple[int, object]]:
    """(chunk index, delta) for the text fed one token per chunk, as the engine streams it."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    out = []
    for i, token in enumerate(ids):
        piece = tokenizer.decode([token])
        for delta in writer.feed(Chunk(text=piece, token_ids=[token], done=i == len(ids) - 1)):
            out.append((i, delta))
    return out


@pytest.mark.parametrize("name", ["deepseek_r1", "qwen3"])
def test_thinking_streams_through_vllms_reasoning_parser(tokenizer, name):
    thinking = ReasoningStream.build(name, tokenizer)
    assert thinking is not None
    out = stream(ReplyWriter(ReplyShape(thinking=thinking)), tokenizer,
                 "<think>\nThe sky is blue because of light.</think>\n\nBlue light scatters most.")
    thought = [(i, d.thinking) for i, d in out if d.thinking]
    said = [(i, d.content) for i, d in out if d.content]
    assert "".join(t for _, t in thought) == "The sky is blue because of light."
    assert "".join(c for _, c in said).strip() == "Blue light scatters most."
    assert len(thought) > 3 and thought[-1][0] < said[0][0]  # several chunks, all before the answer


@pytest.mark.parametrize("name", ["deepseek_r1", "qwen3"])
@pytest.mark.parametrize("prompt, reply, thought", [
    ("<|im_start|>assistant\n<think>\n\n</think>\n\n", "Hello there.", ""),  # think: false closed it
    ("<|im_start|>assistant\n", "Hello there.", ""),  # no thought opened: Ollama's rule, all content
    ("<|im_start|>assistant\n<think>\n", "Hmm.</think>Hello there.", "Hmm."),  # the template opened it
])
def test_whether_there_is_a_thought_is_decided_as_ollama_does(tokenizer, name, prompt, reply, thought):
    thinking = ReasoningStream.build(name, tokenizer, tokenizer.encode(prompt, add_special_tokens=False), prompt)
    out = stream(ReplyWriter(ReplyShape(thinking=thinking)), tokenizer, reply)
    assert "".join(d.thinking for _, d in out) == thought
    assert "".join(d.content for _, d in out).strip() == "Hello there."


def test_a_tool_call_goes_out_when_it_closes_not_at_the_end(tokenizer):
    writer = ReplyWriter(ReplyShape(tool_parser="hermes", tools=TOOLS, tokenizer=tokenizer))
    text = ('Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>')
    out = stream(writer, tokenizer, text)
    last = max(i for i, _ in out)
    calls = [(i, c) for i, d in out for c in d.tool_calls]
    assert [c.arguments for _, c in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert [c.index for _, c in calls] == [0, 1] and all(c.name == "get_weather" for _, c in calls)
    assert calls[0][0] < last  # the first call went out mid-stream
    assert "".join(d.content for _, d in out) == "Let me check."


def test_a_vocabulary_without_think_tokens_keeps_the_text_splitter():
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(tiny_llama_dir()))
    assert ReasoningStream.build("deepseek_r1", plain) is None
    assert isinstance(ThinkingSplitter(), ThinkingSplitter)


def test_parsers_per_model():
    assert reasoning_parser_name("qwen3", "") == "qwen3"
    assert reasoning_parser_name("gpt_oss", "") == "openai_gptoss"
    assert reasoning_parser_name("qwen2", "{{ '<think>' }}") == "deepseek_r1"
    assert reasoning_parser_name("llama", "plain") is None
    assert tool_parser_name("<tool_call>") == "hermes"
    assert tool_parser_name("[TOOL_CALLS]") == "mistral"
    assert tool_parser_name("<tool_call>\n<function={{ name }}>") == "qwen3_coder"
    assert tool_parser_name("<|start|>assistant<|channel|>commentary") == "openai"
