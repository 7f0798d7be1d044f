"""vllama: Ollama's HTTP API on vLLM's AsyncLLM."""

__version__ = "0.1.0"
# What /api/version reports: clients compare it with Ollama releases (and gate features such as
# /v1/responses and /v1/messages on it), so it names the Ollama API level vllama speaks, not
# vllama's own version: the 0.33 line read from Ollama's source. compat/KNOWN_DIFFERENCES.md
# lists what still differs from it.
OLLAMA_VERSION = "0.33.0"
