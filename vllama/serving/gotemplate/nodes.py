"""text/template/parse/node.go: the parse tree, the node kinds Ollama's template code walks."""

from __future__ import annotations

from dataclasses import dataclass, field


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
