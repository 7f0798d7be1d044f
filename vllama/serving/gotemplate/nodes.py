"""text/template/parse/node.go: the parse tree, the node kinds Ollama's template code walks."""

from __future__ import annotations

from dataclasses import dataclass, field

from .values import go_quote


@dataclass
class Node:
    pos: int = 0
    line: int = 0


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class TextNode(Node):
    text: str = ""


@dataclass
class FieldNode(Node):
    ident: list[str] = field(default_factory=list)  # .A.B -> ["A", "B"]


@dataclass
class VariableNode(Node):
    ident: list[str] = field(default_factory=list)  # $x.A -> ["$x", "A"]


@dataclass
class DotNode(Node):
    pass


@dataclass
class NilNode(Node):
    pass


@dataclass
class BoolNode(Node):
    value: bool = False


@dataclass
class NumberNode(Node):
    value: int | float = 0
    text: str = ""


@dataclass
class StringNode(Node):
    value: str = ""
    quoted: str = ""


@dataclass
class IdentifierNode(Node):
    name: str = ""  # a function


@dataclass
class ChainNode(Node):
    node: Node | None = None  # (pipeline).A.B
    fields: list[str] = field(default_factory=list)


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)


@dataclass
class PipeNode(Node):
    decl: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)


@dataclass
class ActionNode(Node):
    pipe: PipeNode | None = None


@dataclass
class BranchNode(Node):
    pipe: PipeNode | None = None
    list: ListNode | None = None
    else_list: ListNode | None = None


@dataclass
class IfNode(BranchNode):
    pass


@dataclass
class WithNode(BranchNode):
    pass


@dataclass
class RangeNode(BranchNode):
    pass


@dataclass
class TemplateNode(Node):
    name: str = ""  # {{template "name" pipeline}}
    pipe: PipeNode | None = None


@dataclass
class BreakNode(Node):
    pass


@dataclass
class ContinueNode(Node):
    pass


@dataclass
class EndNode(Node):
    pass


@dataclass
class ElseNode(Node):
    pass


def go_string(node: Node | None) -> str:
    """A node as Go's parse package writes it back (Node.String()), for error contexts."""
    if isinstance(node, FieldNode):
        return "." + ".".join(node.ident)
    if isinstance(node, VariableNode):
        return ".".join(node.ident)
    if isinstance(node, IdentifierNode):
        return node.name
    if isinstance(node, DotNode):
        return "."
    if isinstance(node, NilNode):
        return "nil"
    if isinstance(node, BoolNode):
        return "true" if node.value else "false"
    if isinstance(node, NumberNode):
        return node.text
    if isinstance(node, StringNode):
        return node.quoted
    if isinstance(node, ChainNode):
        inner = node.node
        text = f"({go_string(inner)})" if isinstance(inner, PipeNode) else go_string(inner)
        return text + "".join("." + f for f in node.fields)
    if isinstance(node, CommandNode):
        return " ".join(f"({go_string(a)})" if isinstance(a, PipeNode) else go_string(a)
                        for a in node.args)
    if isinstance(node, PipeNode):
        decl = ", ".join(go_string(v) for v in node.decl)
        return (decl + " := " if decl else "") + " | ".join(go_string(c) for c in node.cmds)
    if isinstance(node, ActionNode):
        return "{{" + go_string(node.pipe) + "}}"
    if isinstance(node, TextNode):
        return repr(node.text)
    if isinstance(node, ListNode):
        return "".join(go_string(n) for n in node.nodes)
    if isinstance(node, BranchNode):
        word = {IfNode: "if", RangeNode: "range", WithNode: "with"}.get(type(node), "if")
        text = "{{" + word + " " + go_string(node.pipe) + "}}" + go_string(node.list)
        if node.else_list is not None:
            text += "{{else}}" + go_string(node.else_list)
        return text + "{{end}}"
    if isinstance(node, TemplateNode):
        if node.pipe is None:
            return "{{template " + go_quote(node.name) + "}}"
        return "{{template " + go_quote(node.name) + " " + go_string(node.pipe) + "}}"
    if isinstance(node, BreakNode):
        return "{{break}}"
    if isinstance(node, ContinueNode):
        return "{{continue}}"
    return ""
