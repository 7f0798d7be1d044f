"""GET /metrics: Prometheus text about the engines this server runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .http import serving

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def metrics(request: Request) -> Response:
    lines = [
        "# HELP vllama_engine_requests_unfinished Requests an engine holds, running or waiting.",
        "# TYPE vllama_engine_requests_unfinished gauge",
    ]
    loaded = serving(request).scheduler.loaded()
    for entry in loaded:
        lines.append(f'vllama_engine_requests_unfinished{{model="{_label(entry.model.name)}"}} '
                     f'{entry.runner.unfinished()}')
    lines += ["# HELP vllama_models_loaded Models loaded now.", "# TYPE vllama_models_loaded gauge",
              f"vllama_models_loaded {len(loaded)}"]
    return Response("\n".join(lines) + "\n", media_type=PROMETHEUS_TYPE)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
