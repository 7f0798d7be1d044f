"""Side-by-side benchmark of Ollama-API servers (vllama, Ollama) and the bare vLLM engine: `python -m bench`."""
