"""Ollama's native API: `schema` (every request and response shape), `render` (events -> NDJSON or
one object), `show` (a model's /api/show and /api/tags facts), and the routes."""
