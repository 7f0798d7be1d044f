"""Anthropic's Messages API as Ollama serves it (`/v1/messages`): `schema` (the request translated
onto a native chat, and the response shapes), `render` (events -> Anthropic's SSE or one message),
and the routes."""
