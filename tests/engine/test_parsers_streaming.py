"""vLLM's reasoning and tool parsers fed token by token through the reply writer: thinking and tool
calls arrive over the stream, not at its end (a real tokenizer with the markers as tokens)."""

from __future__ import annotations

import pytest

from tests.fixtures import tiny_llama_dir

from vllama.engine.base import Chunk
from vllama.engine.parsers import (MarkerAligner, ReasoningStream, ThinkingSplitter, reasoning_parser_name,
                                   tool_parser_name)
from vllama.serving.replies import ReplyShape, ReplyWriter

pytestmark = pytest.mark.heavy_imports  # vLLM, torch or transformers: one worker imports them (tests/conftest.py)

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir()))
    tok.add_tokens(["<think>", "</think>"])  # not special, as Qwen3's and DeepSeek-R1's: written into the text
    tok.add_special_tokens({"additional_special_tokens": ["<tool_call>", "</tool_call>"]})
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


def vllm_chunks(tokenizer, text: str, stop: list[str], per_step: int = 1) -> list[Chunk]:
    """The chunks vLLM 0.32 streams for `text` (RequestOutputKind.DELTA), `per_step` tokens a step: the
    token ids at once, the text as its detokenizer gives it (BaseIncrementalDetokenizer.
    get_next_output_text): while the request runs, the last max(len(stop)) - 1 characters are held
    back for the stop-string check; the finished request gets the rest."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    hold = max(len(s) for s in stop) - 1 if stop else 0
    chunks, sent = [], 0
    for start in range(0, len(ids), per_step):
        step = ids[start:start + per_step]
        done = start + len(step) == len(ids)
        output_text = tokenizer.decode(ids[:start + len(step)], skip_special_tokens=True)
        length = len(output_text) if done else len(output_text) - hold
        piece = output_text[sent:length] if length > sent else ""
        sent = max(sent, length)
        chunks.append(Chunk(text=piece, token_ids=step, done=done))
    return chunks


def split(writer: ReplyWriter, chunks: list[Chunk]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(chunk index, thinking) and (chunk index, content) for every delta the writer makes."""
    thought, said = [], []
    for i, chunk in enumerate(chunks):
        for delta in writer.feed(chunk):
            if delta.thinking:
                thought.append((i, delta.thinking))
            if delta.content:
                said.append((i, delta.content))
    return thought, said


REPLY = "<think>\nThe sky is blue because of light.</think>\n\nBlue light scatters most."
STOPS = [[], ["<|im_end|>"], ["<|im_start|>", "<|im_end|>", "\nuser:"], ["<|start_header_id|>user"]]


@pytest.mark.parametrize("name", ["deepseek_r1", "qwen3"])
@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("per_step", [1, 2, 3, 5])
def test_thinking_splits_at_the_markers_while_stop_strings_hold_text_back(tokenizer, name, stop, per_step):
    """vLLM's text lags its token ids by up to len(longest stop) - 1 characters, and a step of several
    tokens puts a marker in a chunk with other text: the split still lands on the markers."""
    chunks = vllm_chunks(tokenizer, REPLY, stop, per_step)
    if stop:  # the lag is real: some chunk's text is not its tokens' text
        assert any(c.text != tokenizer.decode(c.token_ids) for c in chunks)
    thought, said = split(ReplyWriter(ReplyShape(thinking=ReasoningStream.build(name, tokenizer))), chunks)
    assert "".join(t for _, t in thought) == "The sky is blue because of light."
    assert "".join(c for _, c in said) == "\n\nBlue light scatters most."
    if len(chunks) > 8:  # the thought streams, ahead of the answer
        assert len(thought) > 1 and thought[-1][0] <= said[0][0]


@pytest.mark.parametrize("name", ["deepseek_r1", "qwen3"])
def test_a_hidden_thought_leaves_nothing_in_the_content_with_stop_strings(tokenizer, name):
    """think: false on a model that thinks anyway: none of the thought, nor its tags, in the answer."""
    shape = ReplyShape(thinking=ReasoningStream.build(name, tokenizer), hide_thinking=True)
    thought, said = split(ReplyWriter(shape), vllm_chunks(tokenizer, REPLY, ["<|im_start|>", "<|im_end|>"], 2))
    assert not thought and "".join(c for _, c in said) == "\n\nBlue light scatters most."


@pytest.mark.parametrize("name", ["deepseek_r1", "qwen3"])
@pytest.mark.parametrize("per_step", [1, 4])
def test_a_thought_the_template_opened_splits_at_its_end_with_stop_strings(tokenizer, name, per_step):
    prompt = "<|im_start|>assistant\n<think>\n"
    thinking = ReasoningStream.build(name, tokenizer, tokenizer.encode(prompt, add_special_tokens=False), prompt)
    chunks = vllm_chunks(tokenizer, "Hmm, let me see.</think>Hello there.", ["<|im_end|>"], per_step)
    thought, said = split(ReplyWriter(ReplyShape(thinking=thinking)), chunks)
    assert ("".join(t for _, t in thought), "".join(c for _, c in said)) == ("Hmm, let me see.", "Hello there.")


@pytest.mark.parametrize("name", ["deepseek_r1", "qwen3"])
def test_text_held_at_the_end_of_the_reply_comes_out(tokenizer, name):
    """A reply that ends in what could start a marker (`<`), or inside the thought."""
    for reply, expected in [("<think>\nHmm <</think>\n\nSo a <", ("Hmm <", "\n\nSo a <")),
                            ("<think>\nHmm, a <", ("Hmm, a <", ""))]:
        chunks = vllm_chunks(tokenizer, reply, ["<|im_end|>"])
        thought, said = split(ReplyWriter(ReplyShape(thinking=ReasoningStream.build(name, tokenizer))), chunks)
        assert ("".join(t for _, t in thought), "".join(c for _, c in said)) == expected


def test_the_aligner_gives_each_marker_its_own_text(tokenizer):
    """What deepseek_r1's parser is fed: a marker id only ever with its own text, alone."""
    from vllm.reasoning import ReasoningParserManager  # imported by the test, not at collection

    parser = ReasoningParserManager.get_reasoning_parser("deepseek_r1")(tokenizer)
    aligner = MarkerAligner.for_parser(parser)
    assert aligner is not None
    pieces = []
    for chunk in vllm_chunks(tokenizer, REPLY, ["<|start_header_id|>user"], per_step=3):
        pieces += aligner.feed(chunk.text, chunk.token_ids, chunk.done)
    ends = {parser.start_token_id: "<think>", parser.end_token_id: "</think>"}
    assert "".join(text for text, _ in pieces) == REPLY
    assert [ids for _, ids in pieces if set(ids) & set(ends)] == [[parser.start_token_id], [parser.end_token_id]]
    assert all(text == ends[ids[0]] for text, ids in pieces if set(ids) & set(ends))
    assert sum(len(ids) for _, ids in pieces) == len(tokenizer.encode(REPLY, add_special_tokens=False))


def test_special_think_tokens_the_engine_does_not_write_are_not_waited_for():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir()))
    tok.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    from vllm.reasoning import ReasoningParserManager

    assert MarkerAligner.for_parser(ReasoningParserManager.get_reasoning_parser("deepseek_r1")(tok)) is None


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
