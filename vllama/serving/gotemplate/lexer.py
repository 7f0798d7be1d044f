"""text/template/parse/lex.go: template text to items (text, delimiters, the tokens of actions), trim
markers applied and comments dropped as Go's lexer does."""

from __future__ import annotations

from dataclasses import dataclass

_SPACE = " \t\r\n"
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
             "template", "with"}


class _LexError(Exception):
    def __init__(self, msg: str, pos: int):
        super().__init__(msg)
        self.msg = msg
        self.pos = pos


def _u(ch: str) -> str:
    """Go's %#U: U+0040 '@'."""
    return f"U+{ord(ch):04X} '{ch}'"


@dataclass
class Item:
    typ: str  # text, left, right, space, field, variable, identifier, keyword, bool, number,
    # string, rawstring, char, charconst, pipe, assign, declare, lparen, rparen, dot, eof
    val: str
    pos: int
    line: int


def is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class Lexer:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.items: list[Item] = []
        self.paren_depth = 0

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def error(self, msg: str, pos: int | None = None) -> _LexError:
        """A lexical error at the item that starts at `pos`: Go's lexer emits it as an error item,
        so the parser reports it only when it reaches that point (and with its own context)."""
        return _LexError(msg, self.pos if pos is None else pos)

    def emit(self, typ: str, start: int, val: str | None = None) -> None:
        self.items.append(Item(typ, self.text[start:self.pos] if val is None else val, start,
                                self.line_at(start)))

    def run(self) -> list[Item]:
        try:
            return self._run()
        except _LexError as e:
            line = self.line_at(e.pos)
            self.items.append(Item("error", e.msg, e.pos, line))
            self.items.append(Item("eof", "", len(self.text), line))
            return self.items

    def _run(self) -> list[Item]:
        text = self.text
        trim_next = False
        while True:
            start = self.pos
            at = text.find("{{", self.pos)
            end = len(text) if at < 0 else at
            chunk = text[start:end]
            if trim_next:
                stripped = chunk.lstrip(_SPACE)
                start += len(chunk) - len(stripped)
                chunk = stripped
                trim_next = False
            left_trim = at >= 0 and len(text) >= at + 4 and text[at + 2] == "-" and text[at + 3] in _SPACE
            if left_trim:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.items.append(Item("text", chunk, start, self.line_at(start)))
            if at < 0:
                self.pos = len(text)
                self.emit("eof", self.pos, "")
                return self.items
            self.pos = at + 2
            self.emit("left", at, "{{")
            if left_trim:
                self.pos += 2
            trim_next = self.lex_action_or_comment()

    def at_right(self) -> tuple[bool, bool]:
        rest = self.text[self.pos:]
        if len(rest) >= 2 and rest[0] in _SPACE and rest[1] == "-" and rest[2:].startswith("}}"):
            return True, True
        return rest.startswith("}}"), False

    def lex_action_or_comment(self) -> bool:
        """Lex one action after its left delimiter; returns whether it ends with a trim marker."""
        text = self.text
        if text.startswith("/*", self.pos):
            self.items.pop()  # the left delimiter: a comment is no action, dropped whole
            comment = self.pos
            end = text.find("*/", self.pos + 2)
            if end < 0:
                raise self.error("unclosed comment", comment)
            self.pos = end + 2
            delim, trim = self.at_right()
            if not delim:
                raise self.error("comment ends before closing delimiter", comment)
            self.pos += 4 if trim else 2
            return trim
        while True:
            delim, trim = self.at_right()
            if delim:
                if self.paren_depth:
                    raise self.error("unclosed left paren")
                start = self.pos
                self.pos += 4 if trim else 2
                self.emit("right", start, "}}")
                return trim
            if self.pos >= len(text):
                raise self.error("unclosed action")
            ch = text[self.pos]
            start = self.pos
            if ch in _SPACE:
                n = 0
                while self.pos < len(text) and text[self.pos] in _SPACE:
                    self.pos += 1
                    n += 1
                rest = text[self.pos - 1:]
                if len(rest) >= 2 and rest[1] == "-" and rest[2:].startswith("}}"):
                    self.pos -= 1  # the last space belongs to the " -}}" marker
                    if n == 1:
                        continue
                self.emit("space", start)
            elif ch == "=":
                self.pos += 1
                self.emit("assign", start)
            elif ch == ":":
                if not text.startswith(":=", self.pos):
                    raise self.error("expected :=", start)
                self.pos += 2
                self.emit("declare", start)
            elif ch == "|":
                self.pos += 1
                self.emit("pipe", start)
            elif ch == '"':
                self.lex_quote()
            elif ch == "`":
                end = text.find("`", self.pos + 1)
                if end < 0:
                    raise self.error("unterminated raw quoted string", start)
                self.pos = end + 1
                self.emit("rawstring", start)
            elif ch == "'":
                self.lex_char()
            elif ch == "$":
                self.pos += 1
                while self.pos < len(text) and is_alnum(text[self.pos]):
                    self.pos += 1
                self.emit("variable", start)
                self.check_terminator()
            elif ch == "." and self.pos + 1 < len(text) and text[self.pos + 1].isdigit():
                self.lex_number()
            elif ch == ".":
                self.pos += 1
                if self.pos < len(text) and is_alnum(text[self.pos]):
                    while self.pos < len(text) and is_alnum(text[self.pos]):
                        self.pos += 1
                    self.emit("field", start)
                    self.check_terminator()
                else:
                    self.emit("dot", start)
            elif ch in "+-" or ch.isdigit():
                self.lex_number()
            elif is_alnum(ch):
                while self.pos < len(text) and is_alnum(text[self.pos]):
                    self.pos += 1
                word = text[start:self.pos]
                if word in _KEYWORDS:
                    self.emit("keyword", start)
                elif word in ("true", "false"):
                    self.emit("bool", start)
                else:
                    self.emit("identifier", start)
                self.check_terminator()
            elif ch == "(":
                self.pos += 1
                self.paren_depth += 1
                self.emit("lparen", start)
            elif ch == ")":
                self.pos += 1
                self.paren_depth -= 1
                self.emit("rparen", start)
                if self.paren_depth < 0:
                    raise self.error("unexpected right paren U+0029 ')'", start)
            elif ch.isprintable() and ord(ch) < 128:
                self.pos += 1
                self.emit("char", start)
            else:
                raise self.error(f"unrecognized character in action: {_u(ch)}", start)

    def check_terminator(self) -> None:
        if self.pos >= len(self.text):
            return
        ch = self.text[self.pos]
        if ch in _SPACE or ch in ".,|:)(" or self.text.startswith("}}", self.pos):
            return
        raise self.error(f"bad character {_u(ch)}")

    def lex_quote(self) -> None:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise self.error("unterminated quoted string", start)
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\":
                if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                    raise self.error("unterminated quoted string", start)
                self.pos += 1
            elif ch == '"':
                break
        self.emit("string", start)

    def lex_char(self) -> None:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise self.error("unterminated character constant", start)
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\":
                self.pos += 1
            elif ch == "'":
                break
        self.emit("charconst", start)

    def lex_number(self) -> None:
        start = self.pos
        text = self.text
        if text[self.pos] in "+-":
            self.pos += 1
        digits = "0123456789_"
        if text.startswith(("0x", "0X"), self.pos):
            self.pos += 2
            digits = "0123456789abcdefABCDEF_"
        elif text.startswith(("0o", "0O"), self.pos):
            self.pos += 2
            digits = "01234567_"
        elif text.startswith(("0b", "0B"), self.pos):
            self.pos += 2
            digits = "01_"
        while self.pos < len(text) and text[self.pos] in digits:
            self.pos += 1
        if self.pos < len(text) and text[self.pos] == ".":
            self.pos += 1
            while self.pos < len(text) and text[self.pos] in digits:
                self.pos += 1
        if digits.startswith("0123456789_") and self.pos < len(text) and text[self.pos] in "eE":
            self.pos += 1
            if self.pos < len(text) and text[self.pos] in "+-":
                self.pos += 1
            while self.pos < len(text) and text[self.pos] in "0123456789_":
                self.pos += 1
        if self.pos < len(text) and is_alnum(text[self.pos]):
            self.pos += 1
            raise self.error(f'bad number syntax: "{text[start:self.pos]}"', start)
        self.emit("number", start)
