"""Starlette glue every dialect shares: the serving context of a request and JSON responses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..serving.context import ServingContext
from .gojson import dumps

JSON_TYPE = "application/json; charset=utf-8"


def serving(request: Request) -> ServingContext:
    """The store, scheduler and defaults the app was built with."""
    context: ServingContext = request.app.state.serving
    return context


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON_TYPE)


def error_response(status: int, message: str) -> Response:
    """Ollama's error shape: `{"error": "..."}`."""
    return json_response({"error": message}, status)
