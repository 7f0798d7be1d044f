"""Real Ollama clients against a live vllama, and a differential check against Ollama itself.

    python -m compat --url http://127.0.0.1:11434 --model smollm2:135m [--embed-model all-minilm]

See compat/README.md for the cases, and compat/KNOWN_DIFFERENCES.md for what differs on purpose.
"""
