"""Option values typed as Ollama types them (`/set parameter`, PARAMETER) and a Modelfile reader."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INT = {"num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch", "num_gpu",
       "main_gpu", "num_thread"}
FLOAT = {"top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty"}
BOOL = {"use_mmap", "numa", "low_vram", "penalize_newline"}
LIST = {"stop"}


class ParameterError(ValueError):
    pass


def parse_parameter(key: str, values: list[str]) -> Any:
    """api.FormatParams for one key: the typed value Ollama would send."""
    if key in LIST:
        return list(values)
    if not values:
        raise ParameterError(f"missing value for parameter '{key}'")
    text = values[0]
    try:
        if key in INT:
            return int(text)
        if key in FLOAT:
            return float(text)
    except ValueError:
        kind = "int" if key in INT else "float"
        raise ParameterError(f"invalid {kind} value [{text}]") from None
    if key in BOOL:
        lowered = text.lower()
        if lowered in ("1", "t", "true"):
            return True
        if lowered in ("0", "f", "false"):
            return False
        raise ParameterError(f"invalid bool value [{text}]")
    raise ParameterError(f"unknown parameter '{key}'")


@dataclass
class Modelfile:
    source: str | None = None  # FROM: a model name, or a path (relative to the Modelfile's folder)
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    license: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)

    def request_fields(self) -> dict[str, Any]:
        """The /api/create fields besides model/from/files."""
        out: dict[str, Any] = {}
        if self.parameters:
            out["parameters"] = self.parameters
        if self.template is not None:
            out["template"] = self.template
        if self.system is not None:
            out["system"] = self.system
        if self.license:
            out["license"] = self.license
        if self.messages:
            out["messages"] = self.messages
        return out


_COMMAND = re.compile(r"^\s*([A-Za-z]+)\s+", re.MULTILINE)


def _value(text: str, pos: int) -> tuple[str, int]:
    """A value starting at `pos`: `\"\"\"...\"\"\"` (may span lines), `"..."`, or the rest of the line."""
    if text.startswith('"""', pos):
        end = text.find('"""', pos + 3)
        if end < 0:
            raise ValueError('unterminated """ in Modelfile')
        return text[pos + 3:end], end + 3
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end < 0 else line_end
    line = text[pos:line_end].strip()
    if len(line) >= 2 and line[0] == line[-1] == '"':
        line = line[1:-1].replace('\\"', '"')
    return line, line_end


def parse_modelfile(text: str) -> Modelfile:
    mf = Modelfile()
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        stripped = text[pos:line_end].strip()
        if not stripped or stripped.startswith("#"):
            pos = line_end + 1
            continue
        m = _COMMAND.match(text, pos)
        if not m or m.start(1) > line_end:
            raise ValueError(f"Modelfile: cannot read line {stripped!r}")
        command = m.group(1).upper()
        value, pos = _value(text, m.end())
        pos += 1
        if command == "FROM":
            mf.source = value
        elif command == "PARAMETER":
            key, _, rest = value.strip().partition(" ")
            rest = rest.strip()
            try:
                words = shlex.split(rest) if key not in LIST else [rest.strip('"')]
            except ValueError:
                words = [rest]
            typed = parse_parameter(key.lower(), words)
            if key.lower() in LIST:
                mf.parameters.setdefault(key.lower(), []).extend(typed)
            else:
                mf.parameters[key.lower()] = typed
        elif command == "TEMPLATE":
            mf.template = value
        elif command == "SYSTEM":
            mf.system = value
        elif command == "LICENSE":
            mf.license.append(value)
        elif command == "MESSAGE":
            role, _, content = value.partition(" ")
            if role not in ("system", "user", "assistant"):
                raise ValueError(f"Modelfile: MESSAGE role must be system, user or assistant, not {role!r}")
            mf.messages.append({"role": role, "content": content.strip()})
        elif command in ("ADAPTER", "REQUIRES", "RENDERER", "PARSER"):
            raise ValueError(f"Modelfile: {command} is not supported by vllama")
        else:
            raise ValueError(f"Modelfile: unknown command {command}")
    if mf.source is None:
        raise ValueError("no FROM line")
    return mf


def read_modelfile(path: Path) -> Modelfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    return parse_modelfile(text)
