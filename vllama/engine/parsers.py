"""Splitting model output into thinking, content and tool calls, per model family, as it streams.

Both go through vLLM's registries, streamed: the reasoning parser (`ReasoningParserManager`:
qwen3, deepseek_r1, openai_gptoss, granite, mistral, ...) chosen from the model's `model_type`, else
deepseek_r1 for a template that writes `<think>`; the tool parser (`ToolParserManager`: hermes,
mistral, llama3_json, ...) chosen from the chat template's markers. Each is fed every delta
(`extract_reasoning_streaming`, `extract_tool_calls_streaming`), so thinking streams as it is
written and each tool call goes out as soon as its arguments close, as Ollama streams them.

Hand-written pieces, where vLLM has none: `ThinkingSplitter`, the text split on `<think>`, for a
vocabulary without `<think>`/`</think>` tokens (vLLM's think parsers key on those token ids and
refuse such a tokenizer); `MarkerAligner`, which lines the text up with the token ids for vLLM's
token-id reasoning parsers (with stop strings vLLM's text lags its ids; its engine-based parsers
line them up themselves, the older ones do not); and the hold-until-the-end path for a tool parser
vLLM cannot build for the tokenizer at hand (it then parses the whole reply, or leaves it as content).
"""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import Sequence
from typing import Any, Protocol

from .base import ToolCall

log = logging.getLogger("vllama.engine")

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# chat-template marker -> vLLM tool parser name
_TOOL_PARSERS = [("<function=", "qwen3_coder"), ("<|channel|>", "openai"), ("<|start_of_role|>", "granite"),
                 ("<tool_call>", "hermes"), ("[TOOL_CALLS]", "mistral"), ("<|python_tag|>", "llama3_json"),
                 ("<|start_header_id|>", "llama3_json"), ("<|tool_call|>", "phi4_mini_json")]


# config.json model_type -> vLLM reasoning parser (families whose parser is not deepseek_r1's <think>)
_REASONING_BY_MODEL_TYPE = {
    "qwen3": "qwen3", "qwen3_moe": "qwen3", "qwen3_next": "qwen3", "qwen3_5": "qwen3",
    "gpt_oss": "openai_gptoss", "granite": "granite", "granitemoehybrid": "granite", "mistral": "mistral",
    "ernie4_5": "ernie45", "ernie4_5_moe": "ernie45", "glm4_moe": "glm45", "olmo3": "olmo3",
    "hunyuan_v1_moe": "hunyuan_a13b", "seed_oss": "seed_oss", "minimax_m2": "minimax_m2", "step3": "step3",
    "kimi_k2": "kimi_k2", "deepseek_v3": "deepseek_r1",
}


def reasoning_parser_name(model_type: str, template: str) -> str | None:
    """vLLM's reasoning parser for a thinking model: by model_type, else deepseek_r1 for `<think>`."""
    if model_type in _REASONING_BY_MODEL_TYPE:
        return _REASONING_BY_MODEL_TYPE[model_type]
    return "deepseek_r1" if THINK_OPEN in template or THINK_CLOSE in template else None


def tool_parser_name(template: str) -> str | None:
    for marker, name in _TOOL_PARSERS:
        if marker in template:
            return name
    return "hermes" if "tools" in template else None


def tool_call_marker(parser: str | None) -> str | None:
    return {"hermes": "<tool_call>", "mistral": "[TOOL_CALLS]", "llama3_json": "{",
            "phi4_mini_json": "functools["}.get(parser or "")


def call_id() -> str:
    """Ollama's ids: call_ and 8 characters of [a-z0-9]."""
    return "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def extract_tool_calls(parser_name: str, tokenizer: Any, text: str,
                       tools: list[dict[str, Any]]) -> tuple[str, list[ToolCall]]:
    """(content before the calls, the calls) from a whole reply, via vLLM's parser."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.tool_parsers import ToolParserManager

    try:
        parser = ToolParserManager.get_tool_parser(parser_name)(tokenizer)
        request = ChatCompletionRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": ""}], "tools": tools})
        info = parser.extract_tool_calls(text, request)
    except Exception:  # a parser that rejects the output leaves it as plain content
        log.warning("tool parser %s failed", parser_name, exc_info=True)
        return text, []
    if not info.tools_called:
        return text, []
    calls = []
    for index, call in enumerate(info.tool_calls):
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError:
            continue
        calls.append(ToolCall(id=call_id(), index=index, name=call.function.name, arguments=arguments))
    return (info.content or "") if calls else text, calls


def _chat_request(tools: list[dict[str, Any]]) -> Any:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": ""}], "tools": tools or None})


class Thinking(Protocol):
    def feed(self, delta: str, final: bool = False, token_ids: Sequence[int] = ()) -> tuple[str, str]:
        """(thinking, content) for one delta of the reply."""
        ...


class ReasoningStream:
    """A vLLM reasoning parser fed delta by delta: (thinking, content) as they stream.

    vLLM's parsers take any reply without the closing tag as all thought. Ollama's rule decides
    first whether there is a thought at all: the prompt opened one (or closed it: then none), else
    the reply must start with the opening tag; only a thought goes through the parser."""

    def __init__(self, parser: Any, prompt_ids: Sequence[int] = (), prompt: str = ""):
        from vllm.parser.engine.adapters import ParserEngineReasoningAdapter

        self.parser = parser
        # vLLM's engine-based parsers (qwen3, mistral, granite, ...) defer a marker token until its
        # text arrives, and hold text back until finish_streaming; the older token-id parsers
        # (deepseek_r1 and the other BaseThinkingReasoningParser ones) need the text lined up.
        self.engine_based = isinstance(parser, ParserEngineReasoningAdapter)
        self.aligner = None if self.engine_based else MarkerAligner.for_parser(parser)
        parser.adjust_initial_state_from_prompt(list(prompt_ids))
        start = parser.reasoning_start_str or THINK_OPEN
        if prompt_ids and parser.is_reasoning_end(list(prompt_ids)):
            self.state = "content"  # the template closed the thought (think: false)
        elif prompt.rstrip().endswith(start):
            self.state = "thinking"
        else:
            self.state = "start"
        self.start = start
        self.pending, self.pending_ids = "", list[int]()  # the reply's head while it may still open a thought
        self.text = ""
        self.ids: list[int] = []
        self._leading = True  # newlines right after the opening tag are layout, not thought

    @property
    def may_think(self) -> bool:
        """Whether a thought can still come (the prompt opened one, or the reply may): False where
        the template closed it (think: false)."""
        return self.state != "content"

    @classmethod
    def build(cls, name: str, tokenizer: Any, prompt_ids: Sequence[int] = (),
              prompt: str = "") -> ReasoningStream | None:
        """None where vLLM's parser refuses the tokenizer (no think tokens in its vocabulary)."""
        from vllm.reasoning import ReasoningParserManager

        try:
            return cls(ReasoningParserManager.get_reasoning_parser(name)(tokenizer), prompt_ids, prompt)
        except Exception as err:  # ValueError/KeyError: the parser's tokens are not in the vocabulary
            log.info("reasoning parser %s does not fit this tokenizer (%s): splitting on text", name, err)
            return None

    def feed(self, delta: str, final: bool = False, token_ids: Sequence[int] = ()) -> tuple[str, str]:
        if self.state == "content":
            return "", delta
        if self.state == "start":
            self.pending += delta
            self.pending_ids.extend(token_ids)
            head = self.pending.lstrip()
            if not final and (not head or (self.start.startswith(head) and head != self.start)):
                return "", ""  # could still become the opening tag
            delta, token_ids = self.pending, list(self.pending_ids)
            self.state = "thinking" if head.startswith(self.start) else "content"
            if self.state == "content":
                return "", delta
        pieces = self.aligner.feed(delta, token_ids, final) if self.aligner else [(delta, list(token_ids))]
        thinking, content = "", ""
        for text, ids in pieces:
            thought, said = self._parse(text, ids)
            thinking, content = thinking + thought, content + said
        if final and self.engine_based:
            thought, said = self._message(self.parser.finish_streaming())
            thinking, content = thinking + thought, content + said
        return thinking, content

    def _parse(self, delta: str, token_ids: Sequence[int]) -> tuple[str, str]:
        previous_text, previous_ids = self.text, list(self.ids)
        self.text += delta
        self.ids.extend(token_ids)
        if not delta:
            return "", ""
        return self._message(self.parser.extract_reasoning_streaming(
            previous_text, self.text, delta, previous_ids, list(self.ids), list(token_ids)))

    def _message(self, msg: Any) -> tuple[str, str]:
        if msg is None:
            return "", ""
        thinking = msg.reasoning or ""
        if self._leading and thinking:
            thinking = thinking.lstrip("\n")
            self._leading = not thinking
        return thinking, msg.content or ""


class MarkerAligner:
    """Cuts the stream into (text, token ids) pieces that agree at the reasoning markers, for vLLM's
    token-id reasoning parsers (BaseThinkingReasoningParser: deepseek_r1, ...).

    Those parsers find `<think>`/`</think>` by token id in a delta and cut that delta's text there,
    so they need the delta's text to be the text of its ids. vLLM's detokenizer sends the ids at once
    but, while a request has stop strings, holds back the last (longest stop - 1) characters of text
    (`BaseIncrementalDetokenizer.get_next_output_text`) until the request ends, and a chunk of several
    tokens holds a marker with other text. Here each marker token goes to the parser alone with its own
    text, once that text has arrived (a single marker token is what those parsers skip, so its text
    never lands in the thought or the answer); ids of the other tokens go with the text between the
    markers. Hand-written: vLLM's engine-based parsers do this in their TokenIDScanner, the older
    parsers have nothing for it."""

    def __init__(self, markers: dict[int, str]):
        self.markers = markers  # token id -> its text, for the markers the detokenizer writes out
        self.text = ""  # arrived, not yet passed on
        self.ids: list[int] = []  # arrived, not yet passed on

    @classmethod
    def for_parser(cls, parser: Any) -> MarkerAligner | None:
        """None where the parser's markers are not single tokens written into the text."""
        tokenizer, vocab = parser.model_tokenizer, parser.vocab
        markers = {}
        for marker in (parser.reasoning_start_str, parser.reasoning_end_str):
            token_id = vocab.get(marker) if marker else None
            # a special token the engine skips (skip_special_tokens) has no text to wait for
            if token_id is not None and tokenizer.decode([token_id], skip_special_tokens=True) == marker:
                markers[token_id] = marker
        return cls(markers) if markers else None

    def feed(self, text: str, token_ids: Sequence[int], final: bool) -> list[tuple[str, list[int]]]:
        self.text += text
        self.ids.extend(token_ids)
        pieces: list[tuple[str, list[int]]] = []
        while True:
            at_id = next((i for i, token in enumerate(self.ids) if token in self.markers), -1)
            if at_id < 0:
                if self.text or (final and self.ids):
                    pieces.append((self.text, self.ids))
                    self.text, self.ids = "", []
                return pieces
            marker = self.markers[self.ids[at_id]]
            at = self.text.find(marker)
            if at < 0 and final:  # its text never came (cut by a stop string): the id alone would mislead
                del self.ids[at_id]
                continue
            if at < 0:  # the marker's text has not arrived: pass on what cannot be part of it
                head = self.text[: len(self.text) - partial_suffix(self.text, marker)]
                if head:
                    pieces.append((head, self.ids[:at_id]))
                    self.text, self.ids = self.text[len(head):], self.ids[at_id:]
                return pieces
            if at or at_id:
                pieces.append((self.text[:at], self.ids[:at_id]))
            pieces.append((marker, [self.ids[at_id]]))
            self.text, self.ids = self.text[at + len(marker):], self.ids[at_id + 1:]


class ToolStream:
    """A vLLM tool parser fed delta by delta: content as it streams, and each call once its
    arguments are a whole JSON object (or the reply ended), as Ollama sends complete calls."""

    def __init__(self, parser: Any, tools: list[dict[str, Any]], name: str = "", tokenizer: Any = None):
        self.parser = parser
        self.request = parser.adjust_request(_chat_request(tools))
        self.tools, self.name, self.tokenizer = tools, name, tokenizer
        self.content = ""  # what went out as content
        self.text = ""
        self.ids: list[int] = []
        self.names: dict[int, str] = {}
        self.arguments: dict[int, str] = {}
        self.sent: set[int] = set()

    @classmethod
    def build(cls, name: str, tokenizer: Any, tools: list[dict[str, Any]]) -> ToolStream | None:
        from vllm.tool_parsers import ToolParserManager

        if tokenizer is None:
            return None
        try:
            return cls(ToolParserManager.get_tool_parser(name)(tokenizer), tools, name, tokenizer)
        except Exception:
            log.warning("tool parser %s cannot be built for this tokenizer", name, exc_info=True)
            return None

    def feed(self, delta: str, token_ids: Sequence[int], final: bool) -> tuple[str, list[ToolCall]]:
        previous_text, previous_ids = self.text, list(self.ids)
        self.text += delta
        self.ids.extend(token_ids)
        content = ""
        if delta:
            try:
                msg = self.parser.extract_tool_calls_streaming(
                    previous_text, self.text, delta, previous_ids, list(self.ids), list(token_ids), self.request)
            except Exception:  # a parser that chokes on the output leaves it to the end
                log.warning("tool parser failed while streaming", exc_info=True)
                msg = None
            if msg is not None:
                content = msg.content or ""
                for call in msg.tool_calls or []:
                    fn = call.function
                    if fn is None:
                        continue
                    fn = fn if isinstance(fn, dict) else fn.model_dump(exclude_none=True)
                    if fn.get("name"):
                        self.names[call.index] = fn["name"]
                    self.arguments[call.index] = self.arguments.get(call.index, "") + (fn.get("arguments") or "")
        calls = self._ready(final)
        if final and not self.sent:
            # Nothing streamed as a call: the whole reply through the parser once, else what was
            # held back (a marker that never became a call) is content after all.
            rest = self.text[len(self.content) + len(content):] if self.text.startswith(self.content + content) else ""
            text, whole = extract_tool_calls(self.name, self.tokenizer, self.text, self.tools) if rest else ("", [])
            if whole:
                self.sent.update(call.index for call in whole)
                return "", whole
            content += rest
        self.content += content
        return content, calls

    def _ready(self, final: bool) -> list[ToolCall]:
        calls = []
        for index in sorted(self.names):
            if index in self.sent:
                continue
            arguments = _json_object(self.arguments.get(index, "") or ("{}" if final else ""))
            if arguments is None:
                if not final:
                    break  # calls go out in order
                continue
            self.sent.add(index)
            calls.append(ToolCall(id=call_id(), index=index, name=self.names[index], arguments=arguments))
        return calls


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class ThinkingSplitter:
    """Feeds text deltas, returns (thinking, content) deltas.

    Thinking is a `<think>` at the very start of the reply (or a prompt that already opened it) up to
    `</think>`; a tag anywhere else is content. A partial tag at the end of a delta is held back."""

    def __init__(self, opened: bool = False):
        self.state = "thinking" if opened else "start"
        self._pending = ""
        self._leading = True  # newlines right after <think> are layout, not thought

    def feed(self, delta: str, final: bool = False, token_ids: Sequence[int] = ()) -> tuple[str, str]:
        text = self._pending + delta
        self._pending = ""
        if self.state == "start":
            head = text.lstrip()
            if head.startswith(THINK_OPEN):
                self.state, text = "thinking", head[len(THINK_OPEN):]
            elif THINK_OPEN.startswith(head) and not final:
                self._pending = text  # could still become <think>
                return "", ""
            else:
                self.state = "content"
        if self.state == "content":
            return "", text
        at = text.find(THINK_CLOSE)
        if at >= 0:
            self.state = "content"
            return self._thought(text[:at]), text[at + len(THINK_CLOSE):].lstrip("\n")
        keep = 0 if final else partial_suffix(text, THINK_CLOSE)
        self._pending = text[len(text) - keep:]
        return self._thought(text[: len(text) - keep]), ""

    def _thought(self, text: str) -> str:
        if self._leading:
            text = text.lstrip("\n")
            self._leading = not text
        return text


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
