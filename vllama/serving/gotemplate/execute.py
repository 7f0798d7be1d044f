"""text/template/exec.go: walking a parse tree with data, as Go executes a template."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .funcs import ARITY, BUILTINS, LAZY, UNSUPPORTED
from .nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
    go_string,
)
from .values import (
    NO_VALUE,
    any_typed,
    go_quote,
    holds_interfaces,
    GoStruct,
    TemplateExecError,
    go_print,
    map_keys,
    truth,
    type_name,
)


class Break(Exception):
    pass


class Continue(Exception):
    pass


class State:
    def __init__(self, funcs: dict[str, Callable[..., Any]], data: Any, source: str = "",
                 defined: dict[str, ListNode] | None = None, missing_zero: bool = True):
        self.funcs = funcs
        self.defined = defined or {}
        self.name = ""  # the template being executed: "" or a {{define}}d one
        # (name, value, boxed): boxed values are Go interface values (see eval_field)
        self.vars: list[tuple[str, Any, bool]] = [("$", data, False)]
        self.dot_boxed = False  # whether dot is an interface value (a []any or map element)
        self.missing_zero = missing_zero  # missingkey=zero (Ollama's) or Go's default
        self.out: list[str] = []
        self.node: Node | None = None
        self.source = source

    def error(self, msg: str, node: Node | None = None) -> TemplateExecError:
        """Go's exec error: where (line:column in bytes) and at which node, then what."""
        node = node or self.node
        pos = node.pos if node is not None else 0
        start = self.source.rfind("\n", 0, pos) + 1
        line = self.source.count("\n", 0, pos) + 1
        column = len(self.source[start:pos].encode("utf-8"))
        context = go_string(node)
        return TemplateExecError(
            f'template: :{line}:{column}: executing {go_quote(self.name)} at <{context}>: {msg}')

    def var(self, name: str) -> tuple[Any, bool]:
        for n, v, boxed in reversed(self.vars):
            if n == name:
                return v, boxed
        raise self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any, boxed: bool = False) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value, boxed)
                return
        raise self.error(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, ActionNode):
            assert node.pipe is not None
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                self.out.append(self.printable(value))
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise Break()
        elif isinstance(node, ContinueNode):
            raise Continue()
        else:
            raise self.error(f"unknown node: {type(node).__name__}")

    def printable(self, value: Any) -> str:
        # an action's value is unwrapped from its interface first: a nil one is no value at all
        if value is None:
            return "<no value>"
        try:
            return go_print(value)
        except TemplateExecError as e:
            raise self.error(e.message) from None

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        """{{template "name" pipeline}}: the named tree with the pipeline's value as dot and $."""
        tree = self.defined.get(node.name)
        if tree is None:
            raise self.error(f'template "{node.name}" not defined', node)
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else NO_VALUE
        saved = self.vars, self.name, self.dot_boxed
        self.vars, self.name, self.dot_boxed = [("$", value, False)], node.name, False
        try:
            self.walk(value, tree)
        except RecursionError:  # Go stops at 100,000 nested calls; Python's stack ends sooner
            self.vars, self.name, self.dot_boxed = saved
            raise self.error("exceeded maximum template depth (100000)", node) from None
        finally:
            self.vars, self.name, self.dot_boxed = saved

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            assert node.pipe is not None and node.list is not None
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value) and isinstance(node, WithNode):
                saved, self.dot_boxed = self.dot_boxed, False  # a pipeline's value is unwrapped
                try:
                    self.walk(value, node.list)
                finally:
                    self.dot_boxed = saved
            elif truth(value):
                self.walk(dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        mark = len(self.vars)
        try:
            assert node.pipe is not None and node.list is not None
            value = self.eval_pipeline(dot, node.pipe)
            pairs: Iterator[tuple[Any, Any]]
            if value is None or value is NO_VALUE:
                pairs = iter(())
            elif isinstance(value, (list, tuple)):
                pairs = iter(list(enumerate(value)))
            elif isinstance(value, dict):
                pairs = iter([(k, value[k]) for k in map_keys(value)])
            elif isinstance(value, int) and not isinstance(value, bool):
                if len(node.pipe.decl) > 1:
                    raise self.error(f"can't use {value} to iterate over more than one variable")
                pairs = iter([(i, i) for i in range(value)])
            else:
                raise self.error(f"range can't iterate over {go_print(value)}")
            ran = False
            boxed = holds_interfaces(value)
            for index, elem in pairs:
                ran = True
                decl = node.pipe.decl
                if decl:
                    if node.pipe.is_assign:
                        if len(decl) > 1:
                            self.set_var(decl[0].ident[0], index)
                            self.set_var(decl[1].ident[0], elem, boxed)
                        else:
                            self.set_var(decl[0].ident[0], elem, boxed)
                    else:
                        # the last declared variable is the element, the first the index
                        top = len(self.vars) - 1
                        self.vars[top] = (self.vars[top][0], elem, boxed)
                        if len(decl) > 1:
                            self.vars[top - 1] = (self.vars[top - 1][0], index, False)
                inner = len(self.vars)
                saved_boxed, self.dot_boxed = self.dot_boxed, boxed
                try:
                    self.walk(elem, node.list)
                except Continue:
                    pass
                except Break:
                    del self.vars[inner:]
                    break
                finally:
                    self.dot_boxed = saved_boxed
                    del self.vars[inner:]
            if not ran and node.else_list is not None:
                try:
                    self.walk(dot, node.else_list)
                except Break:  # Go recovers a break anywhere in the range statement, else included
                    pass
        finally:
            del self.vars[mark:]

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        if value is None:  # Go unwraps the interface: a nil one is no value at all
            value = NO_VALUE
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.vars.append((variable.ident[0], value, False))
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        self.node = first
        if isinstance(first, FieldNode):
            return self.eval_field_chain(dot, dot, first.ident, cmd.args, final, self.dot_boxed)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            value, boxed = self.var(first.ident[0])
            if len(first.ident) == 1:
                self.not_a_function(cmd.args, final)
                return value
            return self.eval_field_chain(dot, value, first.ident[1:], cmd.args, final, boxed)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, NumberNode):
            return first.value
        if isinstance(first, StringNode):
            return first.value
        raise self.error(f"can't evaluate command {first!r}")

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {go_string(args[0])}")

    def eval_chain(self, dot: Any, chain: ChainNode, args: list[Node], final: Any) -> Any:
        assert chain.node is not None
        pipe = chain.node
        value = (self.eval_pipeline(dot, pipe) if isinstance(pipe, PipeNode)
                 else self.eval_arg(dot, pipe))
        return self.eval_field_chain(dot, value, chain.fields, args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, ident: list[str], args: list[Node],
                         final: Any, boxed: bool = False) -> Any:
        for name in ident[:-1]:
            receiver, boxed = self.eval_field(receiver, name, False, boxed)
        has_args = len(args) > 1 or final is not _MISSING
        return self.eval_field(receiver, ident[-1], has_args, boxed)[0]

    def eval_field(self, receiver: Any, name: str, has_args: bool, boxed: bool) -> tuple[Any, bool]:
        """One field step, and whether its value is an interface value. `boxed`: the receiver is
        one (a []any or map element, an `any` field): Go names its type `interface {}`, and a
        nil one cannot be looked into."""
        if receiver is NO_VALUE:
            return NO_VALUE, False
        if receiver is None:
            if boxed:
                raise self.error(f"nil pointer evaluating interface {{}}.{name}")
            return NO_VALUE, False
        typ = "interface {}" if boxed else None
        if isinstance(receiver, GoStruct):
            if name not in receiver.fields:
                raise self.error(f"can't evaluate field {name} in type {typ or receiver.type_name}")
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function")
            value = receiver.fields[name]
            return value, any_typed(value)
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name], holds_interfaces(receiver)
            if self.missing_zero:  # the map's zero element: for map[string]any a nil interface
                return None, True
            return NO_VALUE, False
        raise self.error(f"can't evaluate field {name} in type {typ or type_name(receiver)}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node],
                      final: Any) -> Any:
        """Call a function: `cmd` is the command it heads (Go's context for "error calling")."""
        self.node = node
        name = node.name
        fn = self.funcs.get(name) or BUILTINS.get(name)
        if fn is None and name not in LAZY:
            if name in UNSUPPORTED:
                raise self.error(f"{name} is not supported by vllama's template renderer")
            raise self.error(f'"{name}" is not a defined function')
        arg_nodes = args[1:]
        given = len(arg_nodes) + (final is not _MISSING)
        fixed, variadic = ARITY.get(name, (given, False))
        if variadic and given < fixed:
            raise self.error(f"wrong number of args for {name}: want at least {fixed} got {len(arg_nodes)}")
        if not variadic and given != fixed:
            raise self.error(f"wrong number of args for {name}: want {fixed} got {given}")
        if name in LAZY:  # and/or evaluate operands only until the answer is known
            value: Any = None
            for n in arg_nodes:
                value = self.eval_arg(dot, n)
                if truth(value) == (name == "or"):
                    return value
            return final if final is not _MISSING else value
        values = [self.eval_arg(dot, n) for n in arg_nodes]
        if final is not _MISSING:
            values.append(final)
        for i, (arg, value) in enumerate(zip(args[1:] + [None], values)):
            if i < len(values) and _wants_string(name, i):
                self._check_string(arg, value)
        # a function gets a missing value as the nil interface Go hands it
        values = [None if v is NO_VALUE else v for v in values]
        assert fn is not None
        try:
            return fn(*values)
        except TemplateExecError as e:
            raise self.error(f"error calling {name}: {e.message}", cmd) from None
        except (TypeError, ValueError) as e:  # a value no Go function would have been handed
            raise self.error(f"error calling {name}: {e}", cmd) from None

    def _check_string(self, arg: Node | None, value: Any) -> None:
        """A string parameter: a literal must be a string, a value must hold one (Go's evalArg)."""
        if isinstance(arg, (BoolNode, NumberNode, NilNode, DotNode)) and not isinstance(value, str):
            raise self.error(f"expected string; found {go_string(arg)}", arg)
        if not isinstance(value, str):
            got = "interface {}" if value is None or value is NO_VALUE else type_name(value)
            raise self.error(f"wrong type for value; expected string; got {got}", arg)

    def eval_arg(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, NilNode):
            return None
        if isinstance(node, FieldNode):
            return self.eval_field_chain(dot, dot, node.ident, [node], _MISSING, self.dot_boxed)
        if isinstance(node, VariableNode):
            value, boxed = self.var(node.ident[0])
            if len(node.ident) == 1:
                return value
            return self.eval_field_chain(dot, value, node.ident[1:], [node], _MISSING, boxed)
        if isinstance(node, PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, IdentifierNode):
            return self.eval_function(dot, node, node, [node], _MISSING)
        if isinstance(node, ChainNode):
            return self.eval_chain(dot, node, [node], _MISSING)
        if isinstance(node, (BoolNode, NumberNode, StringNode)):
            return node.value
        raise self.error(f"can't handle {go_string(node)} for arg")


_MISSING = object()  # "no value from a previous pipeline stage"


def _wants_string(name: str, index: int) -> bool:
    """Whether Go declares that parameter a string: printf's format, currentDate's arguments."""
    return (name == "printf" and index == 0) or name in ("currentDate", "yesterdayDate")
