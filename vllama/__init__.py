"""vllama: Ollama's HTTP API on vLLM's AsyncLLM."""

__version__ = "0.1.0"
# What /api/version reports: clients compare it with Ollama releases, so it names the Ollama API
# level vllama speaks (the recorded reference), not vllama's own version.
OLLAMA_VERSION = "0.24.0"
