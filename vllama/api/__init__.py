"""HTTP only: parse a body into a typed request, call `vllama.serving`, render its events.

One package per dialect (`ollama/`, `openai/`), each with its wire schema, its renderers and its
routes; `gojson` is what they share of Go's JSON, `errors` the status-code table, `app` the app.
"""
