"""Modelfile layers + a request -> the prompt, checked against what a real Ollama 0.24 rendered.

The exchanges in data/rendered/ were recorded from Ollama serving the store in data/ollama-store
(manifests and small layers as Ollama wrote them; the GGUF is not needed here) with
`_debug_render_only: true`: each holds the curl command (with the request body) and the raw HTTP
answer, whose `_debug_info.rendered_template` is the prompt.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from vllama.serving.modelfile_prompt import (
    ChatInput,
    ChatTemplatePrompt,
    ContextFit,
    GenerateInput,
    InsertPrompt,
    ModelfileLayers,
    PromptMessage,
    RenderedPrompt,
    TemplateError,
    chat_messages,
    generate_messages,
    is_go_template,
    modelfile_layers,
    plan_chat,
    plan_generate,
    strips_prior_thinking,
    template_capabilities,
)
from vllama.serving.ollama_template import PromptToolCall, message_from_wire

RENDERED = Path(__file__).parent / "data" / "rendered"
STORE = Path(__file__).parent / "data" / "ollama-store"
# The store's manifests by the names the exchanges use; smollm2:135m was copied to ollama-smol:q4.
MANIFESTS = {"ollama-pirate": "ollama-pirate/latest",
             "ollama-custom-template": "ollama-custom-template/latest",
             "smollm2:135m": "ollama-smol/q4"}
LAYER = "application/vnd.ollama.image."


def store_layers(model: str) -> ModelfileLayers:
    """A model's SYSTEM, MESSAGE and TEMPLATE layers, read from the blobs Ollama wrote."""
    manifest = json.loads((STORE / "manifests" / "registry.ollama.ai" / "library"
                           / MANIFESTS[model]).read_text())
    blobs = {layer["mediaType"].removeprefix(LAYER):
             (STORE / "blobs" / layer["digest"].replace(":", "-"))
             for layer in manifest["layers"] if layer["mediaType"] != LAYER + "model"}
    messages = json.loads(blobs["messages"].read_text()) if "messages" in blobs else []
    return ModelfileLayers(
        system=blobs["system"].read_text() if "system" in blobs else "",
        messages=tuple(message_from_wire(m) for m in messages),
        template=blobs["template"].read_text() if "template" in blobs else None)


def exchange(path: Path) -> tuple[str, dict, str]:
    """(endpoint, request body, rendered prompt) of one recorded exchange."""
    command, answer = path.read_text().split("\n----\n")[:2]
    argv = shlex.split(command.removeprefix("$ "))
    url = next(a for a in argv if a.startswith("http://"))
    body = json.loads(argv[argv.index("-d") + 1])
    payload = json.loads(answer.split("\r\n\r\n" if "\r\n\r\n" in answer else "\n\n", 1)[1])
    return url.split("11434", 1)[1], body, payload["_debug_info"]["rendered_template"]


def plan_for(endpoint: str, body: dict):
    layers = store_layers(body["model"])
    if endpoint == "/api/chat":
        return plan_chat(layers, ChatInput(
            messages=tuple(message_from_wire(m) for m in body["messages"]),
            tools=tuple(body["tools"]) if "tools" in body else None, think=body.get("think")))
    assert endpoint == "/api/generate"
    return plan_generate(layers, GenerateInput(
        prompt=body.get("prompt", ""), system=body.get("system", ""),
        suffix=body.get("suffix", ""), raw=body.get("raw", False), think=body.get("think")))


EXCHANGES = sorted(RENDERED.glob("r*.txt"))


def test_every_recorded_rendering_is_here():
    assert len(EXCHANGES) == 8


@pytest.mark.parametrize("path", EXCHANGES, ids=lambda p: p.stem)
def test_prompt_matches_ollama_byte_for_byte(path: Path):
    endpoint, body, expected = exchange(path)
    plan = plan_for(endpoint, body)
    assert isinstance(plan, RenderedPrompt)
    assert plan.text == expected


# -- the conversation ---------------------------------------------------------------------------

PIRATE = store_layers("ollama-pirate")
USER = PromptMessage(role="user", content="Tell me a joke.")


def roles(messages) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


def test_chat_puts_the_modelfile_system_first_and_the_history_before_the_request():
    assert roles(chat_messages(PIRATE, ChatInput(messages=(USER,)))) == [
        ("system", "You are a pirate. Always speak like a pirate."),
        ("user", "Who are you?"),
        ("assistant", "Arr, I be Captain Smol, terror of the seven seas!"),
        ("user", "Tell me a joke.")]


def test_a_request_system_message_replaces_the_modelfile_system_after_the_history():
    own = PromptMessage(role="system", content="You are a librarian.")
    assert roles(chat_messages(PIRATE, ChatInput(messages=(own, USER)))) == [
        ("user", "Who are you?"),
        ("assistant", "Arr, I be Captain Smol, terror of the seven seas!"),
        ("system", "You are a librarian."),
        ("user", "Tell me a joke.")]


def test_a_system_message_later_in_the_request_keeps_the_modelfile_system():
    late = PromptMessage(role="system", content="Be brief.")
    got = chat_messages(PIRATE, ChatInput(messages=(USER, late)))
    assert got[0].content == PIRATE.system and got[-1] == late


def test_an_empty_chat_is_not_a_conversation():
    with pytest.raises(ValueError):
        chat_messages(PIRATE, ChatInput(messages=()))


def test_generate_system_field_replaces_the_modelfile_system_in_place():
    got = generate_messages(PIRATE, GenerateInput(prompt="Hi", system="Be brief."))
    assert roles(got)[0] == ("system", "Be brief.") and roles(got)[-1] == ("user", "Hi")
    assert len(got) == 4


def test_generate_with_a_context_leaves_the_history_out_and_puts_the_context_first():
    plan = plan_generate(PIRATE, GenerateInput(prompt="And another.", context_text="EARLIER "))
    assert isinstance(plan, RenderedPrompt)
    assert plan.text == ("EARLIER <|im_start|>system\nYou are a pirate. Always speak like a pirate."
                         "<|im_end|>\n<|im_start|>user\nAnd another.<|im_end|>\n<|im_start|>assistant\n")


def test_generate_images_go_on_the_user_message_and_become_tags():
    plan = plan_generate(PIRATE, GenerateInput(prompt="What is this?", images=("AAAA", "BBBB")))
    assert isinstance(plan, RenderedPrompt)
    assert "<|im_start|>user\n[img-0][img-1]What is this?<|im_end|>" in plan.text
    assert plan.messages[-1].images == ("AAAA", "BBBB")


def test_an_img_placeholder_is_replaced_where_it_stands():
    msg = PromptMessage(role="user", content="Compare [img] with [img].", images=("A", "B"))
    plan = plan_chat(ModelfileLayers(template="{{ range .Messages }}{{ .Content }}{{ end }}"),
                     ChatInput(messages=(msg,)))
    assert isinstance(plan, RenderedPrompt) and plan.text == "Compare [img-0] with [img-1]."


def test_prior_thinking_is_dropped_for_models_that_ask_for_it():
    think = PromptMessage(role="assistant", content="<think>hmm</think>\n\nArr!")
    layers = ModelfileLayers(strip_prior_thinking=True)
    got = chat_messages(layers, ChatInput(messages=(USER, think, USER, think)))
    assert [m.content for m in got] == ["Tell me a joke.", "Arr!", "Tell me a joke.",
                                        "<think>hmm</think>\n\nArr!"]
    assert strips_prior_thinking("qwen3", "qwen3:8b")
    assert strips_prior_thinking("qwen2", "deepseek-r1:7b")
    assert not strips_prior_thinking("llama", "smollm2:135m")


# -- models without a Go template, raw, fill-in-the-middle --------------------------------------

HF = ModelfileLayers(system="You are a pirate.", messages=(PromptMessage(role="user", content="Hi"),
                                                           PromptMessage(role="assistant", content="Arr")))


def test_without_a_go_template_the_caller_gets_the_conversation():
    plan = plan_chat(HF, ChatInput(messages=(USER,), tools=({"type": "function"},), think="low"))
    assert isinstance(plan, ChatTemplatePrompt)
    assert roles(plan.messages) == [("system", "You are a pirate."), ("user", "Hi"),
                                    ("assistant", "Arr"), ("user", "Tell me a joke.")]
    assert plan.tools == ({"type": "function"},) and plan.think == "low"
    generated = plan_generate(HF, GenerateInput(prompt="Yo", context_text="PREVIOUS"))
    assert isinstance(generated, ChatTemplatePrompt)
    assert roles(generated.messages) == [("system", "You are a pirate."), ("user", "Yo")]
    assert generated.prefix == "PREVIOUS"


def test_raw_is_the_prompt_alone():
    assert plan_generate(PIRATE, GenerateInput(prompt="Hi there", raw=True, system="x")) == \
        RenderedPrompt(text="Hi there")


def test_suffix_renders_through_a_template_that_takes_it():
    layers = ModelfileLayers(template="{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>"
                                      "{{- else }}{{ .Prompt }}{{- end }}")
    plan = plan_generate(layers, GenerateInput(prompt="def add(", suffix="return x"))
    assert plan == RenderedPrompt(text="<PRE> def add( <SUF>return x <MID>")


def test_suffix_without_a_go_template_is_left_to_the_caller():
    assert plan_generate(HF, GenerateInput(prompt="def add(", suffix="return x")) == \
        InsertPrompt(prompt="def add(", suffix="return x")


def test_a_request_template_renders_through_the_legacy_path():
    plan = plan_generate(PIRATE, GenerateInput(prompt="Tell me a joke.",
                                               template="[{{ .System }}] {{ .Prompt }} =>"))
    # history turns are rendered one by one, each with its answer; the last has an empty one
    assert isinstance(plan, RenderedPrompt)
    assert plan.text == ("[You are a pirate. Always speak like a pirate.] Who are you? =>"
                         "Arr, I be Captain Smol, terror of the seven seas![] Tell me a joke. =>")


def test_template_errors_surface_as_template_error():
    with pytest.raises(TemplateError, match="unclosed action"):
        plan_generate(PIRATE, GenerateInput(prompt="x", template="{{ .Prompt "))
    bad = ModelfileLayers(template="{{ range .Messages }}{{ .Nope }}{{ end }}")
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        plan_chat(bad, ChatInput(messages=(USER,)))


def test_is_go_template_tells_go_from_jinja():
    assert is_go_template(PIRATE.template or "")
    assert is_go_template("{{ .Prompt }}")
    assert not is_go_template("{% for message in messages %}{{ message['content'] }}{% endfor %}")
    assert not is_go_template("{{ bos_token }}{{ messages[0].content }}")


# -- truncation to num_ctx ----------------------------------------------------------------------


def words(text: str) -> int:
    return len(text.split())


def test_oldest_messages_are_dropped_to_fit_keeping_the_system_message():
    layers = ModelfileLayers(system="sys", template="{{ range .Messages }}{{ .Content }} {{ end }}")
    history = tuple(PromptMessage(role=r, content=f"{r}{i}")
                    for i in range(3) for r in ("user", "assistant"))
    plan = plan_chat(layers, ChatInput(messages=history + (USER,)), fit=ContextFit(words, 7))
    assert isinstance(plan, RenderedPrompt)
    assert plan.text == "sys user2 assistant2 Tell me a joke. "  # 7 words
    # turn boundaries do not count: the first prefix that fits is sent
    odd = plan_chat(layers, ChatInput(messages=history + (USER,)), fit=ContextFit(words, 6))
    assert isinstance(odd, RenderedPrompt) and odd.text == "sys assistant2 Tell me a joke. "
    assert plan.dropped == 4
    unfit = plan_chat(layers, ChatInput(messages=history + (USER,)), fit=ContextFit(words, 1))
    assert isinstance(unfit, RenderedPrompt)
    assert unfit.text == "sys Tell me a joke. "  # the last message always goes


def test_everything_is_kept_when_it_fits():
    plan = plan_chat(PIRATE, ChatInput(messages=(USER,)), fit=ContextFit(words, 10_000))
    assert isinstance(plan, RenderedPrompt) and plan.dropped == 0 and len(plan.messages) == 4


def test_tool_calls_and_tools_reach_the_template():
    layers = ModelfileLayers(template=(
        "{{ if .Tools }}TOOLS {{ .Tools }}\n{{ end }}"
        "{{ range .Messages }}{{ .Role }}:{{ .Content }}"
        "{{ range .ToolCalls }} call {{ .Function.Name }}({{ .Function.Arguments }}){{ end }}"
        "{{ if .ToolName }} from {{ .ToolName }}{{ end }}\n{{ end }}"))
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                             "parameters": {"type": "object", "required": ["city"],
                                                            "properties": {"city": {"type": "string"}}}}}
    call = PromptMessage(role="assistant", tool_calls=(PromptToolCall(name="get_weather",
                                                                      arguments={"city": "Paris", "days": 2}),))
    result = PromptMessage(role="tool", content="sunny", tool_name="get_weather")
    plan = plan_chat(layers, ChatInput(messages=(USER, call, result), tools=(tool,)))
    assert isinstance(plan, RenderedPrompt)
    assert plan.text == (
        'TOOLS [{"type":"function","function":{"name":"get_weather","description":"Weather",'
        '"parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}}}]\n'
        "user:Tell me a joke.\n"
        'assistant: call get_weather({"city":"Paris","days":2})\n'
        "tool:sunny from get_weather\n")


def test_images_count_against_the_context():
    layers = ModelfileLayers(template="{{ range .Messages }}{{ .Content }} {{ end }}")
    old = PromptMessage(role="user", content="old", images=("A",))
    history = (old, PromptMessage(role="assistant", content="seen"))
    fit = ContextFit(words, num_ctx=6, tokens_per_image=5)
    plan = plan_chat(layers, ChatInput(messages=history + (USER,)), fit=fit)
    assert isinstance(plan, RenderedPrompt)
    assert plan.text == "seen Tell me a joke. " and plan.dropped == 1


def test_template_capabilities_follow_the_names_it_uses():
    assert template_capabilities(PIRATE.template or "") == frozenset()
    assert template_capabilities("{{ if .Suffix }}{{ .Prompt }}<FIM>{{ .Suffix }}{{ end }}") == {"insert"}
    assert template_capabilities("{{ range .Tools }}{{ end }}{{ range .Messages }}{{ end }}") == {"tools"}
    with pytest.raises(TemplateError):
        template_capabilities("{{ if }}")


def test_modelfile_layers_from_a_manifest():
    layers = modelfile_layers("{{ .Prompt }}", "sys", [{"role": "user", "content": "Hi"}],
                              family="qwen3", name="qwen3:8b")
    assert layers == ModelfileLayers(system="sys", messages=(PromptMessage(role="user", content="Hi"),),
                                     template="{{ .Prompt }}", strip_prior_thinking=True)
    jinja = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert modelfile_layers(jinja, None, []).template is None
    assert modelfile_layers(None, None, []) == ModelfileLayers()
