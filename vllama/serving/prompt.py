"""The prompt text for a request: the model's Modelfile layers and the request, combined as Ollama
0.24 combines them (`modelfile_prompt`), then rendered.

- A Go TEMPLATE layer (or generate's own `template`) renders the exact text.
- Without one, the conversation (SYSTEM, MESSAGE history, the request's turns) goes through the
  model's Hugging Face chat template.
- A `suffix` with no Go template to place it is fill-in-the-middle from the tokenizer's FIM tokens.
- `raw` passes the prompt through.
"""

from __future__ import annotations

import functools
from typing import Any

from ..engine.base import ModelRecord, Runner
from ..models.info import fim_tokens
from .errors import BadRequest, Failed
from .modelfile_prompt import (
    ChatInput,
    ChatTemplatePrompt,
    ContextFit,
    GenerateInput,
    InsertPrompt,
    ModelfileLayers,
    PromptPlan,
    RenderedPrompt,
    TemplateError,
    message_from_wire,
    message_to_wire,
    modelfile_layers,
    plan_chat,
    plan_generate,
)
from .requests import ChatRequest, CommonRequest, GenerateRequest


def layers_of(model: ModelRecord) -> ModelfileLayers:
    return modelfile_layers(model.template, model.system, model.messages,
                            family=str(model.details.get("family") or ""), name=model.name)


def plan(req: CommonRequest, model: ModelRecord, fit: ContextFit | None) -> PromptPlan:
    """What the engine is given, before any rendering with the tokenizer's template."""
    layers = layers_of(model)
    if isinstance(req, ChatRequest):
        return plan_chat(layers, ChatInput(messages=tuple(message_from_wire(m) for m in req.messages),
                                           tools=tuple(req.tools) or None, think=req.think), fit=fit)
    assert isinstance(req, GenerateRequest)
    # The request's context stays token ids (put in front of the prompt's); only its presence
    # matters here: it leaves the MESSAGE history out.
    return plan_generate(layers, GenerateInput(
        prompt=req.prompt, system=req.system, suffix=req.suffix, raw=req.raw, template=req.template,
        context_text="" if req.context else None, images=tuple(req.images), think=req.think), fit=fit)


def _template_message(message: dict[str, Any]) -> dict[str, Any]:
    """Ollama's message fields under the names Hugging Face templates read."""
    out = dict(message)
    if "tool_name" in out:
        out.setdefault("name", out["tool_name"])
    if "thinking" in out:
        out.setdefault("reasoning_content", out["thinking"])
    return out


@functools.lru_cache(maxsize=16)
def _fim_of(tokenizer: Any) -> tuple[str, str, str] | None:
    return fim_tokens(tokenizer.get_vocab())  # once per loaded tokenizer: vocabularies are large


def fim_prompt(runner: Runner, model: ModelRecord, prompt: str, suffix: str) -> str:
    """Ollama's fill-in-the-middle order: prefix token, prompt, suffix token, suffix, middle token."""
    triple = _fim_of(runner.tokenizer)
    if triple is None:
        raise BadRequest(f"{model.model_name} does not support insert")
    pre, suf, mid = triple
    return f"{pre}{prompt}{suf}{suffix}{mid}"


def render(runner: Runner, req: CommonRequest, model: ModelRecord, template_kwargs: dict[str, Any],
           num_ctx: int) -> str:
    """Blocking: the prompt text. A Go template drops the oldest turns to fit `num_ctx` (when the
    request truncates), as Ollama's chatPrompt does; errors it raises are Ollama's 500s."""
    fit = ContextFit(lambda text: len(runner.tokenize(text)), num_ctx) if req.truncate else None
    try:
        planned = plan(req, model, fit)
    except TemplateError as err:
        raise Failed(err.message) from err
    if isinstance(planned, RenderedPrompt):
        return planned.text
    if isinstance(planned, InsertPrompt):
        return fim_prompt(runner, model, planned.prompt, planned.suffix)
    assert isinstance(planned, ChatTemplatePrompt)
    messages = [_template_message(message_to_wire(m)) for m in planned.messages]
    if "vision" not in model.capabilities:  # no image reaches such a model (completion refuses them):
        messages = [{k: v for k, v in m.items() if k != "images"} for m in messages]  # render the text
    try:
        text = runner.render_chat(messages, list(planned.tools) if planned.tools else None, **template_kwargs)
    except Exception as err:  # a template that rejects the conversation (e.g. roles out of order)
        raise BadRequest(f"failed to render prompt: {err}") from err
    return planned.prefix + text
