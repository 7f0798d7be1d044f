"""GoTemplate: parse once, execute many times; and the names a template refers to."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from .execute import Break, Continue, State
from .funcs import KNOWN_FUNCS, ollama_funcs
from .nodes import (
    ActionNode,
    BranchNode,
    FieldNode,
    ListNode,
    Node,
    PipeNode,
    TemplateNode,
    VariableNode,
)
from .parser import Parser
from .values import TemplateExecError, TemplateParseError


def identifiers(node: Node) -> list[str]:
    """Ollama's template.Identifiers: field and variable names reachable through lists, actions,
    branch pipelines and bodies, and nested pipelines (not through chains)."""
    if isinstance(node, ListNode):
        return [name for n in node.nodes for name in identifiers(n)]
    if isinstance(node, ActionNode):
        return identifiers(node.pipe) if node.pipe is not None else []
    if isinstance(node, BranchNode):
        names = identifiers(node.pipe) if node.pipe is not None else []
        for lst in (node.list, node.else_list):
            if lst is not None:
                names += identifiers(lst)
        return names
    if isinstance(node, TemplateNode):
        if node.pipe is None:  # Ollama refuses {{template "x"}} without a pipeline
            raise TemplateParseError("undefined template specified")
        return identifiers(node.pipe)
    if isinstance(node, PipeNode):
        return [name for c in node.cmds for a in c.args for name in identifiers(a)]
    if isinstance(node, (FieldNode, VariableNode)):
        return list(node.ident)
    return []


class GoTemplate:
    """A parsed Go template. `parse` raises TemplateParseError; `execute` TemplateExecError."""

    def __init__(self, source: str, root: ListNode, defined: dict[str, ListNode] | None = None):
        self.source = source
        self.root = root
        self.defined = defined or {}  # {{define}}/{{block}} trees by name

    @classmethod
    def parse(cls, source: str) -> GoTemplate:
        parser = Parser(source, KNOWN_FUNCS)
        root = parser.parse()
        return cls(source, root, parser.defined)

    def vars(self) -> set[str]:
        """The lower-cased names the template and its defined templates refer to (Ollama's
        Template.Vars; TemplateParseError where Ollama's fails)."""
        trees = [self.root, *self.defined.values()]
        return {name.lower() for tree in trees for n in tree.nodes for name in identifiers(n)}

    def execute(self, data: Any, *, funcs: dict[str, Callable[..., Any]] | None = None,
                today: _dt.date | None = None, missing_zero: bool = True) -> str:
        """Render with `data` as dot. `funcs` replaces Ollama's function set (None: Ollama's, with
        currentDate answering `today`); Go's builtins are always there. `missing_zero`: the
        missingkey=zero option Ollama parses its templates with (False: Go's default)."""
        state = State(ollama_funcs(today) if funcs is None else funcs, data, self.source,
                      self.defined, missing_zero)
        try:
            state.walk(data, self.root)
        except (Break, Continue):  # unreachable: the parser keeps them inside range
            raise state.error("break or continue outside range") from None
        except RecursionError:
            raise TemplateExecError("template: exceeded maximum template depth") from None
        return "".join(state.out)

