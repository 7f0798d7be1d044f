"""Runs models: one vLLM AsyncLLM per loaded model (`runner`, `embedder`), the `scheduler` that loads
and unloads them, Ollama options as SamplingParams (`options`), and the interface all of it
declares to the layers above (`base`)."""
