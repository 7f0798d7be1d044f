"""Ollama's template package on top of `gotemplate`: what data a TEMPLATE layer is given.

Ollama 0.24 (`template/template.go`) parses a TEMPLATE layer with Go's `text/template`, appends
`{{ .Response }}` when the template names neither `.Messages` nor `.Response`, and executes it one
of three ways (`execute` here):

- fill-in-the-middle, when a request has both a prompt and a suffix: `.Prompt`, `.Suffix`;
- the messages path, when the template names `.Messages`: the whole conversation once, with
  `.System` (every system message, joined by blank lines), `.Messages`, `.Tools` and the think
  values (`.Think`, `.ThinkLevel`, `.IsThinkSet`);
- the legacy path otherwise: once per user/assistant exchange with `.System`, `.Prompt` and
  `.Response`, the last exchange through a copy of the template cut after its `.Response`.

Before either conversation path, consecutive messages of one role are merged (`collate`), as
Ollama does. The Go values the template sees (message structs, tools with their `String()` and
JSON forms) are built here, so that `{{ .Function.Arguments }}` or `{{ json .Tools }}` write what
Ollama writes.
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import dataclass, replace
from typing import Any

from .gotemplate import (
    ActionNode,
    BranchNode,
    CommandNode,
    FieldNode,
    GoList,
    GoMap,
    GoStruct,
    GoTemplate,
    ListNode,
    Node,
    PipeNode,
    TemplateExecError,
    go_json,
    go_print,
)


@dataclass(frozen=True)
class PromptToolCall:
    """A tool call an assistant message made (api.ToolCall)."""

    name: str
    arguments: dict[str, Any] | None = None  # None: the call had no arguments object at all
    id: str = ""
    index: int = 0


@dataclass(frozen=True)
class PromptMessage:
    """One message of a conversation, with Ollama's message fields (api.Message)."""

    role: str
    content: str = ""
    thinking: str = ""
    images: tuple[str, ...] = ()  # base64, as on the wire
    tool_calls: tuple[PromptToolCall, ...] = ()
    tool_name: str = ""
    tool_call_id: str = ""


def message_from_wire(item: dict[str, Any]) -> PromptMessage:
    """An Ollama wire message (`/api/chat` messages, a MESSAGE layer's entries) as a PromptMessage."""
    calls = []
    for call in item.get("tool_calls") or []:
        function = call.get("function") or {}
        calls.append(PromptToolCall(name=str(function.get("name") or ""),
                                    arguments=_arguments(function.get("arguments")),
                                    id=str(call.get("id") or ""),
                                    index=int(function.get("index") or 0)))
    return PromptMessage(role=str(item.get("role") or ""), content=str(item.get("content") or ""),
                         thinking=str(item.get("thinking") or ""),
                         images=tuple(item.get("images") or ()), tool_calls=tuple(calls),
                         tool_name=str(item.get("tool_name") or ""),
                         tool_call_id=str(item.get("tool_call_id") or ""))


def _arguments(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def message_to_wire(message: PromptMessage) -> dict[str, Any]:
    """A PromptMessage in Ollama's wire shape (only the fields that are set, role and content always)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.thinking:
        out["thinking"] = message.thinking
    if message.images:
        out["images"] = list(message.images)
    if message.tool_calls:
        out["tool_calls"] = [
            {**({"id": c.id} if c.id else {}),
             "function": {**({"index": c.index} if c.index else {}), "name": c.name,
                          **({"arguments": c.arguments} if c.arguments is not None else {})}}
            for c in message.tool_calls]
    if message.tool_name:
        out["tool_name"] = message.tool_name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


@dataclass(frozen=True)
class TemplateValues:
    """template.Values: what one render is given."""

    messages: tuple[PromptMessage, ...] = ()
    tools: tuple[dict[str, Any], ...] | None = None  # Ollama tool JSON; None: no tools (nil)
    prompt: str = ""
    suffix: str = ""
    think: bool | str | None = None  # the request's `think`


def parse(text: str) -> GoTemplate:
    """Ollama's template.Parse: Go's parse, plus `{{ .Response }}` appended to a template that
    names neither `.Messages` nor `.Response` (so a bare "{{ .Prompt }}" still continues)."""
    template = GoTemplate.parse(text)
    names = template.vars()
    if "messages" not in names and "response" not in names:
        response = CommandNode(args=[FieldNode(ident=["Response"])])
        template.root.nodes.append(ActionNode(pipe=PipeNode(cmds=[response])))
    return template


def collate(messages: tuple[PromptMessage, ...] | list[PromptMessage]) -> tuple[str, list[PromptMessage]]:
    """Every system message's content joined by blank lines, and the messages with consecutive
    ones of one role merged into one (tool results stay apart), as Ollama's collate does."""
    system = [m.content for m in messages if m.role == "system"]
    collated: list[PromptMessage] = []
    for m in messages:
        if collated and collated[-1].role == m.role and m.role != "tool":
            collated[-1] = replace(collated[-1], content=collated[-1].content + "\n\n" + m.content)
        else:
            collated.append(m)
    return "\n\n".join(system), collated


def think_values(think: bool | str | None) -> dict[str, Any]:
    """`.Think`, `.ThinkLevel`, `.IsThinkSet` from a request's `think` (api.ThinkValue)."""
    if isinstance(think, str):
        enabled, level = think in ("high", "medium", "low"), think
    else:
        enabled, level = bool(think), "medium" if think else ""
    return {"Think": enabled, "ThinkLevel": level, "IsThinkSet": think is not None}


def execute(template: GoTemplate, values: TemplateValues, *, today: _dt.date | None = None) -> str:
    """Render a parsed TEMPLATE layer as Ollama's Template.Execute does."""
    think = think_values(values.think)
    if values.prompt and values.suffix:
        return template.execute({"Prompt": values.prompt, "Suffix": values.suffix, "Response": "",
                                 **think}, today=today)
    system, messages = collate(values.messages)
    if "messages" in template.vars():
        return template.execute({"System": system, "Messages": go_messages(messages),
                                 "Tools": go_tools(values.tools), "Response": "", **think},
                                today=today)
    return _execute_legacy(template, messages, think, today)


def _execute_legacy(template: GoTemplate, messages: list[PromptMessage], think: dict[str, Any],
                    today: _dt.date | None) -> str:
    out: list[str] = []
    system = prompt = response = ""

    def turn() -> None:
        nonlocal system, prompt, response
        out.append(template.execute({"System": system, "Prompt": prompt, "Response": response,
                                     **think}, today=today))
        system = prompt = response = ""

    for m in messages:
        if m.role == "system":
            if prompt or response:
                turn()
            system = m.content
        elif m.role == "user":
            if response:
                turn()
            prompt = m.content
        elif m.role == "assistant":
            response = m.content
    # The last exchange runs through a bare copy of the tree cut after .Response: Ollama builds
    # it as a new template, so neither Ollama's functions nor {{define}}d templates exist there.
    last = GoTemplate(template.source, cut_after_response(template.root))
    out.append(last.execute({"System": system, "Prompt": prompt, "Response": response, **think},
                            funcs={}, missing_zero=False))
    return "".join(out)


def cut_after_response(root: ListNode) -> ListNode:
    """Ollama's deleteNode on a copy: keep everything up to the first `.Response` field and drop
    every node after it (actions whose pipeline empties go too)."""
    cut = False

    def hit(node: Node) -> bool:
        nonlocal cut
        if isinstance(node, FieldNode) and "Response" in node.ident:
            cut = True
            return False
        return cut

    def walk(node: Node) -> Node | None:
        if hit(node):
            return None
        if isinstance(node, ListNode):
            node.nodes = [n for n in (walk(c) for c in node.nodes) if n is not None]
        elif isinstance(node, BranchNode):
            kept = walk(node.list) if node.list is not None else None
            assert isinstance(kept, ListNode)  # the cut cannot start between a branch and its body
            node.list = kept
            if node.else_list is not None:
                else_list = walk(node.else_list)
                if not isinstance(else_list, ListNode):  # Go panics on this nil list
                    raise TemplateExecError(
                        "template: .Response inside a branch that has an else: Ollama cannot cut "
                        "this legacy template")
                node.else_list = else_list
        elif isinstance(node, ActionNode):
            pipe = walk(node.pipe) if node.pipe is not None else None
            if not isinstance(pipe, PipeNode):
                return None
            node.pipe = pipe
        elif isinstance(node, PipeNode):
            commands = []
            for command in node.cmds:
                args = [a for a in (walk(arg) for arg in command.args) if a is not None]
                if not args:
                    return None
                command.args = args
                commands.append(command)
            if not commands:
                return None
            node.cmds = commands
        return node

    result = walk(copy.deepcopy(root))
    assert isinstance(result, ListNode)
    return result


# ---------------------------------------------------------------------------------------------
# The Go values a template sees (templateMessage, templateTool and friends)
# ---------------------------------------------------------------------------------------------


def _go_number(value: Any) -> Any:
    """JSON decoded the Go way into `any`: every number a float64, maps and slices untyped."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _go_number(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_go_number(v) for v in value]
    return value


def _json_or_empty_object(m: GoMap) -> str:
    return "{}" if m.nil else go_json(m)


def go_messages(messages: list[PromptMessage]) -> GoList:
    """[]*templateMessage (nil when there are none, as for a generate with only a suffix)."""
    return GoList([_go_message(m) for m in messages], nil=not messages)


def _go_message(m: PromptMessage) -> GoStruct:
    calls = GoList([_go_tool_call(c) for c in m.tool_calls], nil=not m.tool_calls)
    return GoStruct("*template.templateMessage", {
        "Role": m.role, "Content": m.content, "Thinking": m.thinking,
        "Images": GoList(m.images, nil=not m.images), "ToolCalls": calls,
        "ToolName": m.tool_name, "ToolCallID": m.tool_call_id,
    })


def _go_tool_call(c: PromptToolCall) -> GoStruct:
    arguments = GoMap(_go_number(c.arguments or {}), nil=c.arguments is None,
                      string=_json_or_empty_object, untyped=True)
    function = GoStruct("template.templateToolCallFunction",
                        {"Index": c.index, "Name": c.name, "Arguments": arguments})
    return GoStruct("template.templateToolCall", {"ID": c.id, "Function": function})


def _property_type(value: Any) -> GoList:
    """api.PropertyType: a string or a list of them; String() and JSON give one string for one."""
    items = [value] if isinstance(value, str) else [str(v) for v in value or []]
    return GoList(items, nil=not items,
                  string=lambda t: "" if not t else t[0] if len(t) == 1 else go_print(list(t)),
                  marshal=lambda t: t[0] if len(t) == 1 else (None if t.nil else list(t)))


_PROPERTY_JSON = {"AnyOf": ("anyOf", True), "Type": ("type", True), "Items": ("items", True),
                  "Description": ("description", True), "Enum": ("enum", True),
                  "Properties": ("properties", True)}


def _go_property(prop: Any) -> GoStruct:
    """api.ToolProperty."""
    prop = prop if isinstance(prop, dict) else {}
    nested = prop.get("properties")
    ordered = None
    if isinstance(nested, dict):  # *ToolPropertiesMap: JSON keeps the order it came in
        ordered = GoStruct("*api.ToolPropertiesMap",
                           {k: _go_property(v) for k, v in nested.items()},
                           json_names={k: (k, False) for k in nested})
    any_of = [_go_property(p) for p in prop.get("anyOf") or []]
    enum = prop.get("enum")
    return GoStruct("api.ToolProperty", {
        "AnyOf": GoList(any_of, nil=not any_of),
        "Type": _property_type(prop.get("type")),
        "Items": _go_number(prop.get("items")),
        "Description": str(prop.get("description") or ""),
        "Enum": GoList(_go_number(enum), nil=False) if isinstance(enum, list) else GoList(nil=True),
        "Properties": ordered,
    }, json_names=_PROPERTY_JSON)


def go_tools(tools: tuple[dict[str, Any], ...] | list[dict[str, Any]] | None) -> GoList:
    """templateTools: a slice whose String() is its JSON; nil when the request had no tools."""
    if tools is None:
        return GoList(nil=True, string=go_json)
    return GoList([_go_tool(t) for t in tools], string=go_json)


def _go_tool(tool: dict[str, Any]) -> GoStruct:
    function = tool.get("function") or {}
    params = function.get("parameters") or {}
    props = params.get("properties")
    properties = GoMap({k: _go_property(v) for k, v in props.items()} if isinstance(props, dict) else {},
                       nil=not isinstance(props, dict), string=_json_or_empty_object)
    required = params.get("required")
    parameters = GoStruct("template.templateToolFunctionParameters", {
        "Type": str(params.get("type") or ""),
        "Defs": _go_number(params.get("$defs")),
        "Items": _go_number(params.get("items")),
        "Required": GoList([str(r) for r in required or []], nil=required is None),
        "Properties": properties,
    }, json_names={"Type": ("type", False), "Defs": ("$defs", True), "Items": ("items", True),
                   "Required": ("required", True), "Properties": ("properties", False)})
    go_function = GoStruct("template.templateToolFunction", {
        "Name": str(function.get("name") or ""),
        "Description": str(function.get("description") or ""),
        "Parameters": parameters,
    }, json_names={"Name": ("name", False), "Description": ("description", False),
                   "Parameters": ("parameters", False)})
    return GoStruct("template.templateTool", {
        "Type": str(tool.get("type") or ""), "Items": _go_number(tool.get("items")),
        "Function": go_function,
    }, json_names={"Type": ("type", False), "Items": ("items", True),
                   "Function": ("function", False)})
