"""OpenAI's API as Ollama serves it (`/v1/...`): `schema` (requests translated onto Ollama's, and
the response shapes), `render` (events -> SSE or one object), and the routes."""
