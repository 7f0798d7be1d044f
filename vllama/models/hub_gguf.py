"""`hf.co/ORG/REPO:QUANT` as Ollama has it: in a Hub repo of GGUF files, the tag picks a file by
its quantization (`Q4_K_M` when the tag is `latest`), a split GGUF (`-00001-of-00003.gguf`)
being all of its parts. In a safetensors repo the tag stays a revision (pull.py).

Hugging Face's Ollama registry matches a tag against the quantization at the end of each GGUF's
file name, case-insensitively; so does this, from the repo's file listing. Its refusals are
Ollama's messages for the same requests (`pull model manifest: 400: {...}`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

DEFAULT_QUANT = "Q4_K_M"
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})$")
# Quantization names as they end GGUF file names: F16, BF16, Q8_0, Q4_K_M, IQ4_XS, TQ1_0, MXFP4...
_QUANT = re.compile(r"(?:^|[-_.])((?:U?D-)?(?:I?Q\d(?:_[0-9A-Z]+)*|T?Q\d_\d|F16|BF16|F32|MXFP4(?:_MOE)?))$",
                    re.IGNORECASE)


def _refusal(message: str) -> str:
    return "pull model manifest: 400: " + json.dumps({"error": message})


INVALID_QUANT = _refusal('The specified tag is not a valid quantization scheme. Please use another tag or "latest"')
ABSENT_QUANT = _refusal('The specified tag is not available in the repository. Please use another tag or "latest"')


@dataclass(frozen=True)
class GgufChoice:
    quant: str  # as the file name spells it
    paths: tuple[str, ...]  # one file, or every part of a split GGUF in order


def is_gguf(path: str) -> bool:
    """A model GGUF (not a vision projector, which Ollama keeps as a separate layer)."""
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(".gguf") and not name.startswith("mmproj")


def quant_of(path: str) -> str | None:
    """`Q4_K_M` for `Model-Q4_K_M.gguf`, `model.q4_k_m-00001-of-00002.gguf`; None without one."""
    stem = path.rsplit("/", 1)[-1][: -len(".gguf")]
    stem = _SPLIT.sub("", stem)
    m = _QUANT.search(stem)
    return m.group(1) if m else None


def choose(paths: list[str], tag: str) -> GgufChoice:
    """The GGUF file(s) a tag names among a repo's files; ValueError with Ollama's message."""
    by_quant: dict[str, list[str]] = {}
    for path in sorted(p for p in paths if is_gguf(p)):
        quant = quant_of(path)
        if quant:
            by_quant.setdefault(quant.upper(), []).append(path)
    wanted = DEFAULT_QUANT if tag.lower() == "latest" else tag.upper()
    if wanted not in by_quant:
        if tag.lower() == "latest" and by_quant:  # no Q4_K_M: the first quantization, as the Hub does
            wanted = next(iter(sorted(by_quant)))
        elif _QUANT.fullmatch(tag) or tag.lower() == "latest":
            raise ValueError(ABSENT_QUANT)
        else:
            raise ValueError(INVALID_QUANT)
    files = by_quant[wanted]
    parts = [p for p in files if _SPLIT.search(p[: -len(".gguf")])]
    chosen = sorted(parts) if parts else files[:1]
    return GgufChoice(quant_of(chosen[0]) or wanted, tuple(chosen))
