"""text/template/parse/parse.go: items to a parse tree, with Go's checks (declared variables,
defined functions, pipeline shape) and its error wording."""

from __future__ import annotations

from .lexer import Item, Lexer
from .nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
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
)
from .values import TemplateParseError, go_quote

_OPERAND_STARTS = {"bool", "charconst", "dot", "field", "identifier", "number", "rawstring",
                   "string", "variable", "lparen"}


def _unquote(quoted: str) -> str:
    """A Go interpreted string literal's value (the escapes Go and JSON share, plus \\x, \\a...)."""
    body = quoted[1:-1]
    out = []
    i = 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", "'": "'", '"': '"'}
    raw = bytearray()

    def flush() -> None:
        if raw:
            out.append(raw.decode("utf-8", errors="replace"))
            raw.clear()

    while i < len(body):
        ch = body[i]
        if ch != "\\":
            flush()
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in simple:
            flush()
            out.append(simple[esc])
            i += 2
        elif esc == "x":
            raw.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif esc in "01234567":
            raw.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif esc == "u":
            flush()
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif esc == "U":
            flush()
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            raise ValueError(f"invalid escape \\{esc}")
    flush()
    return "".join(out)


def _parse_number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        pass
    if clean.lower().startswith(("0x", "-0x", "+0x")):
        return float.fromhex(clean)
    return float(clean)


class Parser:
    def __init__(self, text: str, funcs: set[str]):
        self.lexer = Lexer(text)
        self.items = self.lexer.run()
        self.i = 0
        self.furthest = 0  # the furthest item read: Go's parse errors give its line
        self.action_line = 0  # the line of the action being parsed, for lexical errors inside it
        self.funcs = funcs
        self.vars = ["$"]
        self.range_depth = 0
        self.defined: dict[str, ListNode] = {}  # {{define}} and {{block}} bodies by name

    # token stream
    def next(self) -> Item:
        item = self.items[self.i]
        self.i += 1
        self.furthest = max(self.furthest, self.i - 1)
        return item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        return self.items[self.i]

    def next_non_space(self) -> Item:
        item = self.next()
        while item.typ == "space":
            item = self.next()
        return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.backup()
        return item

    def error(self, msg: str, item: Item | None = None) -> TemplateParseError:
        line = (item or self.items[self.furthest]).line
        return TemplateParseError(f"template: :{line}: {msg}")

    def unexpected(self, item: Item, context: str) -> TemplateParseError:
        if item.typ == "error":  # a lexical error, reported where the parser met it
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at :{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            return self.error(f"{item.val}{extra}", item)
        return self.error(f"unexpected {_quote_item(item)} in {context}", item)

    def expect(self, typ: str, context: str) -> Item:
        item = self.next_non_space()
        if item.typ != typ:
            raise self.unexpected(item, context)
        return item

    # grammar
    def parse(self) -> ListNode:
        root = ListNode()
        while self.peek().typ != "eof":
            if self.peek().typ == "left":  # {{define}} only at the top level
                mark = self.i
                self.next()
                word = self.next_non_space()
                if word.typ == "keyword" and word.val == "define":
                    self.definition(self.template_name(self.next_non_space(), "define clause"),
                                    "define clause", expect_right=True)
                    continue
                self.i = mark
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                raise self.error(f"unexpected {{{{{'end' if isinstance(node, EndNode) else 'else'}}}}}")
            root.nodes.append(node)
        return root

    def text_or_action(self) -> Node:
        item = self.next_non_space()
        if item.typ == "text":
            return TextNode(item.pos, item.line, item.val)
        if item.typ == "left":
            self.action_line = item.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(item, "input")

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode()
        while self.peek_non_space().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                return lst, node
            lst.nodes.append(node)
        raise self.error("unexpected EOF")

    def action(self) -> Node:
        item = self.peek_non_space()
        if item.typ == "keyword":
            self.next_non_space()
            word = item.val
            if word == "if":
                return self.control(IfNode, "if")
            if word == "range":
                return self.control(RangeNode, "range")
            if word == "with":
                return self.control(WithNode, "with")
            if word == "end":
                self.expect("right", "end")
                return EndNode(item.pos, item.line)
            if word == "else":
                peek = self.peek_non_space()
                if peek.typ == "keyword" and peek.val in ("if", "with"):
                    return ElseNode(item.pos, item.line)  # "else if": the keyword stays
                self.expect("right", "else")
                return ElseNode(item.pos, item.line)
            if word in ("break", "continue"):
                self.expect("right", word)
                if self.range_depth == 0:
                    raise self.error(f"{{{{{word}}}}} outside {{{{range}}}}", item)
                return (BreakNode if word == "break" else ContinueNode)(item.pos, item.line)
            if word == "template":
                token = self.next_non_space()
                name = self.template_name(token, "template clause")
                pipe = None
                if self.next_non_space().typ != "right":
                    self.backup()
                    pipe = self.pipeline("template clause", "right")
                return TemplateNode(token.pos, token.line, name, pipe)
            if word == "block":
                token = self.next_non_space()
                name = self.template_name(token, "block clause")
                pipe = self.pipeline("block clause", "right")
                self.definition(name, "block clause", expect_right=False)
                return TemplateNode(token.pos, token.line, name, pipe)
            if word == "define":
                raise self.unexpected(item, "command")
            self.backup()  # nil: an operand
        pipe = self.pipeline("command", "right")
        return ActionNode(item.pos, item.line, pipe)

    def template_name(self, token: Item, context: str) -> str:
        if token.typ == "string":
            return _unquote(token.val)
        if token.typ == "rawstring":
            return token.val[1:-1]
        raise self.unexpected(token, context)

    def definition(self, name: str, context: str, *, expect_right: bool) -> None:
        """A named body up to its {{end}}, parsed as its own tree (fresh variables), as Go does."""
        if expect_right:
            self.expect("right", context)
        saved = self.vars, self.range_depth, self.action_line
        self.vars, self.range_depth, self.action_line = ["$"], 0, 0  # a new tree, as in Go
        body, end = self.item_list()
        self.vars, self.range_depth, self.action_line = saved
        if not isinstance(end, EndNode):
            raise self.error(f"unexpected {{{{else}}}} in {context}")
        previous = self.defined.get(name)
        if previous is not None and not _is_empty(previous) and not _is_empty(body):
            raise self.error(f"template: multiple definition of template {go_quote(name)}")
        if previous is None or _is_empty(previous):
            self.defined[name] = body

    def control(self, cls: type[BranchNode], context: str) -> BranchNode:
        mark = len(self.vars)
        start = self.items[self.i - 1]
        pipe = self.pipeline(context, "right")
        if context == "range":
            self.range_depth += 1
        lst, nxt = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_list = None
        if isinstance(nxt, ElseNode):
            peek = self.peek_non_space()
            if context == "if" and peek.typ == "keyword" and peek.val == "if":
                self.next_non_space()
                else_list = ListNode(nxt.pos, nxt.line, [self.control(IfNode, "if")])
            elif context == "with" and peek.typ == "keyword" and peek.val == "with":
                self.next_non_space()
                else_list = ListNode(nxt.pos, nxt.line, [self.control(WithNode, "with")])
            else:
                else_list, nxt = self.item_list()
                if not isinstance(nxt, EndNode):
                    raise self.error("expected end; found {{else}}")
        del self.vars[mark:]
        return cls(start.pos, start.line, pipe, lst, else_list)

    def pipeline(self, context: str, end: str) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        # declarations: $x := / $x = / $i, $v :=
        while True:
            v = self.peek_non_space()
            if v.typ != "variable":
                break
            self.next_non_space()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in ("assign", "declare"):
                pipe.is_assign = nxt.typ == "assign"
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.line, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.typ == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.line, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "right", "rparen"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            # not a declaration: give the variable back
            self.backup(2 if after.typ == "space" else 1)
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                if not pipe.cmds:
                    raise self.error(f"missing value for {context}", token)
                for i, cmd in enumerate(pipe.cmds[1:], start=1):
                    if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                        raise self.error(f"non executable command in pipeline stage {i + 1}", token)
                return pipe
            if token.typ in _OPERAND_STARTS or (token.typ == "keyword" and token.val == "nil"):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def command(self) -> CommandNode:
        start = self.peek_non_space()
        cmd = CommandNode(start.pos, start.line)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == "space":
                continue
            if token.typ in ("right", "rparen"):
                self.backup()
            elif token.typ == "pipe":
                pass
            else:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == "field":
            at = self.peek()
            fields = []
            while self.peek().typ == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(at.pos, at.line, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(at.pos, at.line, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise self.error("unexpected . after term")
            return ChainNode(at.pos, at.line, node, fields)
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == "identifier":
            if token.val not in self.funcs:
                raise self.error(f'function "{token.val}" not defined', token)
            return IdentifierNode(token.pos, token.line, token.val)
        if typ == "dot":
            return DotNode(token.pos, token.line)
        if typ == "keyword" and token.val == "nil":
            return NilNode(token.pos, token.line)
        if typ == "variable":
            if token.val not in self.vars:
                raise self.error(f'undefined variable "{token.val}"', token)
            return VariableNode(token.pos, token.line, [token.val])
        if typ == "field":
            return FieldNode(token.pos, token.line, [token.val[1:]])
        if typ == "bool":
            return BoolNode(token.pos, token.line, token.val == "true")
        if typ == "number":
            try:
                return NumberNode(token.pos, token.line, _parse_number(token.val), token.val)
            except ValueError:
                raise self.error(f"illegal number syntax: {token.val!r}", token) from None
        if typ == "charconst":
            try:
                value = _unquote('"' + token.val[1:-1].replace('"', '\\"') + '"')
            except (ValueError, IndexError):
                raise self.error(f"malformed character constant: {token.val}", token) from None
            if len(value) != 1:
                raise self.error(f"malformed character constant: {token.val}", token)
            return NumberNode(token.pos, token.line, ord(value), token.val)
        if typ == "lparen":
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            return pipe
        if typ == "string":
            try:
                return StringNode(token.pos, token.line, _unquote(token.val), token.val)
            except (ValueError, IndexError):
                raise self.error(f"invalid syntax: {token.val}", token) from None
        if typ == "rawstring":
            return StringNode(token.pos, token.line, token.val[1:-1].replace("\r", ""), token.val)
        self.backup()
        return None


def _is_empty(tree: ListNode) -> bool:
    """Go's IsEmptyTree: nothing but white space."""
    return all(isinstance(n, TextNode) and not n.text.strip() for n in tree.nodes)


def _quote_item(item: Item) -> str:
    """A token as Go's item.String() writes it: EOF, <keyword>, or quoted (cut at 10 runes)."""
    if item.typ == "eof":
        return "EOF"
    if item.typ in ("keyword", "dot"):
        return f"<{item.val}>"
    if len(item.val) > 10:
        return go_quote(item.val[:10]) + "..."
    return go_quote(item.val)
