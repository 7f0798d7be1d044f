"""A model's Modelfile layers plus a request -> the conversation and the prompt, as Ollama 0.24 builds them.

What Ollama does (server/routes.go GenerateHandler and ChatHandler, server/prompt.go chatPrompt):

- `/api/generate`: the request's `system`, or else the Modelfile's SYSTEM, then the MESSAGE history
  (left out when the request carries a `context`), then the prompt as a user message with the
  request's images. `raw` sends the prompt alone. A `suffix` is fill-in-the-middle. A request's own
  `template` renders through Ollama's legacy path (no truncation). The detokenized `context` goes
  in front of the rendered prompt.
- `/api/chat`: the MESSAGE history, then the request's messages; the Modelfile's SYSTEM goes first
  unless the request's first message is a system message (so a request's system message replaces
  it and lands after the history). For qwen3 and deepseek-r1, `<think>` blocks are dropped from
  assistant turns before the last user message.
- A Go TEMPLATE layer renders that conversation (`ollama_template.execute`); images become
  `[img-N]` tags in the message text; with a token counter and `num_ctx`, the oldest messages are
  dropped until the prompt fits, system messages always kept and the last message always sent.

A model with no Go TEMPLATE layer gets its conversation back (`ChatTemplatePrompt`) for the
caller to render with the model's Hugging Face chat template. Nothing here does I/O; template
errors raise `TemplateError` (Ollama answers them with a 500 and Go's message).

Entry points: `plan_generate(layers, GenerateInput)` and `plan_chat(layers, ChatInput)`, each
returning a `PromptPlan`: `RenderedPrompt | ChatTemplatePrompt | InsertPrompt`. For example:

    layers = modelfile_layers(model.template, model.system, model.messages,
                              family=model.details.get("family", ""), name=model.name)
    plan = plan_chat(layers, ChatInput(messages=tuple(message_from_wire(m) for m in req.messages),
                                       tools=tuple(req.tools) or None, think=req.think),
                     fit=ContextFit(lambda text: len(runner.tokenize(text)), num_ctx))
    match plan:
        case RenderedPrompt(text=text): ...          # tokenize `text` as it is
        case ChatTemplatePrompt(messages=m): ...     # render [message_to_wire(x) for x in m]
        case InsertPrompt(prompt=p, suffix=s): ...   # FIM from the tokenizer, or Ollama's 400
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import ollama_template
from .gotemplate import GoTemplate, TemplateError
from .ollama_template import (
    PromptMessage,
    PromptToolCall,
    TemplateValues,
    message_from_wire,
    message_to_wire,
)

__all__ = [
    "ChatInput", "ChatTemplatePrompt", "ContextFit", "GenerateInput", "InsertPrompt",
    "ModelfileLayers", "PromptMessage", "PromptPlan", "PromptToolCall", "RenderedPrompt",
    "TemplateError", "chat_messages", "generate_messages", "is_go_template", "message_from_wire",
    "message_to_wire", "modelfile_layers", "parse_template", "plan_chat", "plan_generate",
    "render_conversation", "strips_prior_thinking", "template_capabilities",
]


@dataclass(frozen=True)
class ModelfileLayers:
    """What a model's manifest adds to every request."""

    system: str = ""  # the SYSTEM layer
    messages: tuple[PromptMessage, ...] = ()  # the MESSAGE layer (history)
    template: str | None = None  # a Go TEMPLATE layer; None: the Hugging Face chat template renders
    strip_prior_thinking: bool = False  # qwen3 / deepseek-r1 (see strips_prior_thinking)


@dataclass(frozen=True)
class GenerateInput:
    """The parts of an /api/generate request that shape the prompt."""

    prompt: str = ""
    system: str = ""
    suffix: str = ""
    raw: bool = False
    template: str = ""  # the request's own Go template ("" when absent)
    context_text: str | None = None  # the request's `context`, detokenized; None when absent
    images: tuple[str, ...] = ()
    think: bool | str | None = None


@dataclass(frozen=True)
class ChatInput:
    """The parts of an /api/chat request that shape the prompt (messages must not be empty:
    an empty chat is Ollama's load shortcut, served before any prompt is built)."""

    messages: tuple[PromptMessage, ...]
    tools: tuple[dict[str, Any], ...] | None = None  # Ollama tool JSON; None when absent
    think: bool | str | None = None


@dataclass(frozen=True)
class ContextFit:
    """Ollama's history truncation: drop the oldest messages until the prompt has at most
    `num_ctx` tokens as `count_tokens` counts them (the request's `truncate`, default on), each
    image still sent counting `tokens_per_image` more."""

    count_tokens: Callable[[str], int]
    num_ctx: int
    tokens_per_image: int = 0


@dataclass(frozen=True)
class RenderedPrompt:
    """The exact text for the engine (a Go template rendered it, or `raw` passed it through)."""

    text: str
    messages: tuple[PromptMessage, ...] = ()  # the conversation it renders (after truncation)
    dropped: int = 0  # messages truncation left out


@dataclass(frozen=True)
class ChatTemplatePrompt:
    """No Go template: render `messages` (and `tools`) with the model's chat template, adding the
    generation prompt, then put `prefix` (generate's detokenized context) in front."""

    messages: tuple[PromptMessage, ...]
    tools: tuple[dict[str, Any], ...] | None = None
    think: bool | str | None = None
    prefix: str = ""


@dataclass(frozen=True)
class InsertPrompt:
    """Fill-in-the-middle with no Go template to say how: the caller builds it from the
    tokenizer's FIM tokens (or answers Ollama's "does not support insert")."""

    prompt: str
    suffix: str


PromptPlan = RenderedPrompt | ChatTemplatePrompt | InsertPrompt


def is_go_template(text: str) -> bool:
    """Whether a stored template is an Ollama Go template (not a Hugging Face Jinja one): Go
    parses it and it has no Jinja statement tags."""
    if "{%" in text:
        return False
    try:
        GoTemplate.parse(text)
    except TemplateError:
        return False
    return True


@functools.lru_cache(maxsize=128)
def parse_template(source: str) -> GoTemplate:
    """A TEMPLATE layer parsed the way Ollama parses it, once per distinct text (treat the result
    as read-only: it is shared)."""
    return ollama_template.parse(source)


def template_capabilities(source: str) -> frozenset[str]:
    """What a Go TEMPLATE layer gives a model in Ollama: `tools` when it names .Tools, `insert`
    when it names .Suffix (TemplateError when it does not parse)."""
    names = parse_template(source).vars()
    return frozenset(c for c, name in (("tools", "tools"), ("insert", "suffix")) if name in names)


def strips_prior_thinking(family: str, model: str) -> bool:
    """Ollama's filterThinkTags applies to the qwen3 family and to models named deepseek-r1."""
    base = model.rsplit("/", 1)[-1].split(":", 1)[0]
    return family == "qwen3" or base == "deepseek-r1"


def modelfile_layers(template: str | None, system: str | None, messages: list[dict[str, Any]],
                     *, family: str = "", name: str = "") -> ModelfileLayers:
    """A model's layers from what its manifest stores (TEMPLATE text, SYSTEM text, MESSAGE
    entries in wire shape): a template that is not a Go template (a Hugging Face one written back
    by `create`) is left to the chat template path."""
    go = template if template and is_go_template(template) else None
    return ModelfileLayers(system=system or "",
                           messages=tuple(ollama_template.message_from_wire(m) for m in messages),
                           template=go, strip_prior_thinking=strips_prior_thinking(family, name))


# ---------------------------------------------------------------------------------------------
# The conversation
# ---------------------------------------------------------------------------------------------


def generate_messages(layers: ModelfileLayers, req: GenerateInput) -> list[PromptMessage]:
    """/api/generate's conversation: system (the request's, else the Modelfile's), the MESSAGE
    history unless a context is given, then the prompt as a user message."""
    messages: list[PromptMessage] = []
    system = req.system or layers.system
    if system:
        messages.append(PromptMessage(role="system", content=system))
    if req.context_text is None:
        messages.extend(layers.messages)
    messages.append(PromptMessage(role="user", content=req.prompt, images=tuple(req.images)))
    return messages


def chat_messages(layers: ModelfileLayers, req: ChatInput) -> list[PromptMessage]:
    """/api/chat's conversation: the MESSAGE history, then the request's messages; the Modelfile's
    SYSTEM first unless the request opens with its own system message."""
    if not req.messages:
        raise ValueError("chat_messages needs at least one message (an empty chat is a load)")
    messages = list(layers.messages) + list(req.messages)
    if req.messages[0].role != "system" and layers.system:
        messages.insert(0, PromptMessage(role="system", content=layers.system))
    if layers.strip_prior_thinking:
        messages = _strip_prior_thinking(messages)
    return messages


_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def _strip_prior_thinking(messages: list[PromptMessage]) -> list[PromptMessage]:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    out = []
    for i, m in enumerate(messages):
        if m.role == "assistant" and i < last_user:
            m = replace(m, content=_content_after_thinking(m.content))
        out.append(m)
    return out


def _content_after_thinking(content: str) -> str:
    """What Ollama's thinking parser leaves as content: the text after a leading <think> block."""
    trimmed = content.lstrip()
    if not trimmed.startswith(_THINK_OPEN):
        return content
    end = trimmed.find(_THINK_CLOSE)
    if end < 0:
        return ""
    return trimmed[end + len(_THINK_CLOSE):].lstrip()


def _image_tagged(messages: list[PromptMessage], start: int) -> list[PromptMessage]:
    """Ollama's imageTaggedMessages: each image from `start` on becomes [img-N] (N counting from
    0), replacing an [img] placeholder in the text or else put before it."""
    out = list(messages)
    n = 0
    for i in range(start, len(out)):
        m = out[i]
        if not m.images:
            continue
        prefix, text = "", m.content
        for _ in m.images:
            tag = f"[img-{n}]"
            n += 1
            if "[img]" in text:
                text = text.replace("[img]", tag, 1)
            else:
                prefix += tag
        out[i] = replace(m, content=prefix + text)
    return out


# ---------------------------------------------------------------------------------------------
# The prompt
# ---------------------------------------------------------------------------------------------


def render_conversation(template: GoTemplate, messages: list[PromptMessage], *,
                        tools: tuple[dict[str, Any], ...] | None, think: bool | str | None,
                        fit: ContextFit | None = None,
                        today: _dt.date | None = None) -> RenderedPrompt:
    """Ollama's chatPrompt for a Go template: truncate to fit (when `fit` is given), tag images,
    render."""

    def render(msgs: list[PromptMessage]) -> str:
        return ollama_template.execute(
            template, TemplateValues(messages=tuple(msgs), tools=tools, think=think), today=today)

    start, system = 0, []
    if fit is not None and messages:
        last = len(messages) - 1
        for i in range(last + 1):
            system = [m for m in messages[:i] if m.role == "system"]
            images = sum(len(m.images) for m in messages[i:]) * fit.tokens_per_image
            if fit.count_tokens(render(system + messages[i:])) + images <= fit.num_ctx or i == last:
                start = i
                break
    kept = system + _image_tagged(messages, start)[start:]
    return RenderedPrompt(text=render(kept), messages=tuple(kept), dropped=start - len(system))


def plan_generate(layers: ModelfileLayers, req: GenerateInput, *, fit: ContextFit | None = None,
                  today: _dt.date | None = None) -> PromptPlan:
    """What the engine is given for an /api/generate request."""
    if req.raw:
        return RenderedPrompt(text=req.prompt)
    source = req.template or layers.template
    prefix = req.context_text or ""
    if req.suffix:
        if source is None:
            return InsertPrompt(prompt=req.prompt, suffix=req.suffix)
        template = parse_template(source)
        text = ollama_template.execute(
            template, TemplateValues(prompt=req.prompt, suffix=req.suffix, think=req.think),
            today=today)
        return RenderedPrompt(text=prefix + text)
    messages = generate_messages(layers, req)
    if req.template:  # the request's own template: Ollama's legacy flow, no truncation or tags
        template = parse_template(req.template)
        text = ollama_template.execute(
            template, TemplateValues(messages=tuple(messages), think=req.think), today=today)
        return RenderedPrompt(text=prefix + text, messages=tuple(messages))
    if source is None:
        return ChatTemplatePrompt(messages=tuple(messages), think=req.think, prefix=prefix)
    # generate renders as chat does, with an empty (not absent) tool list
    rendered = render_conversation(parse_template(source), messages, tools=(),
                                   think=req.think, fit=fit, today=today)
    return replace(rendered, text=prefix + rendered.text)


def plan_chat(layers: ModelfileLayers, req: ChatInput, *, fit: ContextFit | None = None,
              today: _dt.date | None = None) -> PromptPlan:
    """What the engine is given for an /api/chat request."""
    messages = chat_messages(layers, req)
    if layers.template is None:
        return ChatTemplatePrompt(messages=tuple(messages), tools=req.tools, think=req.think)
    return render_conversation(parse_template(layers.template), messages, tools=req.tools,
                               think=req.think, fit=fit, today=today)

