"""`_debug_render_only` on /api/generate and /api/chat: Ollama answers the prompt it rendered, in
`_debug_info`, instead of running the model (one object, `done: false`, whatever `stream` says)."""

from __future__ import annotations

from typing import Any

from ...serving.requests import ChatRequest, CommonRequest, GenerateRequest
from ..gojson import field, rfc3339_now


def requested(body: dict[str, Any], struct: str) -> bool:
    return bool(field(body, "_debug_render_only", bool, False, struct=struct))


def _image_count(req: CommonRequest) -> int:
    if isinstance(req, ChatRequest):
        return sum(len(m.get("images") or []) for m in req.messages)
    assert isinstance(req, GenerateRequest)
    return len(req.images)


def answer(req: CommonRequest, prompt: str) -> dict[str, Any]:
    """Ollama's shape: an empty reply (chat's message without a role) and `_debug_info` with the
    rendered template and, when there are any, the number of images."""
    out: dict[str, Any] = {"model": req.model, "created_at": rfc3339_now()}
    if isinstance(req, ChatRequest):
        out["message"] = {"role": "", "content": ""}
    else:
        out["response"] = ""
    info: dict[str, Any] = {"rendered_template": prompt}
    if images := _image_count(req):
        info["image_count"] = images
    return {**out, "done": False, "_debug_info": info}
