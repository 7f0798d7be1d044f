"""Images in a request, for vision models: in prompt order, decoded from the base64 the wire carries.

A model without the vision capability answers what Ollama's runner answers for images it cannot
take (`model.ErrNoVisionModel`), as a 400, before anything runs."""

from __future__ import annotations

import base64
import binascii

from .errors import BadRequest
from .requests import ChatRequest, CommonRequest, GenerateRequest

NO_VISION = "this model is missing data required for image input"


def _encoded(req: CommonRequest) -> list[str]:
    if isinstance(req, GenerateRequest):
        return list(req.images)
    assert isinstance(req, ChatRequest)
    return [image for m in req.messages for image in (m.get("images") or [])]


def check_images(req: CommonRequest, capabilities: set[str]) -> None:
    if _encoded(req) and "vision" not in capabilities:
        raise BadRequest(NO_VISION)


def request_images(req: CommonRequest) -> list[bytes]:
    """The images the engine gets, in the order the rendered prompt places them."""
    try:
        return [base64.b64decode(image, validate=False) for image in _encoded(req)]
    except (binascii.Error, ValueError):
        raise BadRequest("illegal base64 data") from None
