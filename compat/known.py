"""Divergences the suite knows about, by id; compat/KNOWN_DIFFERENCES.md explains each one.

KD-n: differences vllama keeps on purpose. Cases expect vllama's behaviour; with --against the
      divergence from Ollama is reported as "known" instead of "fail".
INC-n: incompatibilities in vllama's server still to be fixed. Their cases are expected failures
       ("xfail") as long as the failure shows the text given here; any other failure fails.
"""

from __future__ import annotations

KNOWN_DIFFERENCES: dict[str, str] = {
    "KD-1": "a wrongly typed option is a 400, not Ollama's 500",
    "KD-2": "/api/tags, /api/show, /api/ps details: format safetensors, vLLM's dtype as quantization_level",
    # KD-3 (embeddings only from embedding models) is retired: a generation model embeds, as on Ollama
    "KD-4": "an error in the middle of a /v1 stream is an SSE error event; Ollama's stream just stops",
}

# id -> (summary, a text the failure must contain for the case to count as this expected failure)
INCOMPATIBILITIES: dict[str, tuple[str, str]] = {}  # INC-1..4 were found by this suite and fixed


def expected_failure(xfail: str, detail: str) -> bool:
    """Whether a failure's text is the one the incompatibility `xfail` is known to produce."""
    summary_and_text = INCOMPATIBILITIES.get(xfail)
    return summary_and_text is not None and summary_and_text[1] in detail


def label(xfail: str) -> str:
    return f"{xfail}: {INCOMPATIBILITIES[xfail][0]}" if xfail in INCOMPATIBILITIES else xfail
