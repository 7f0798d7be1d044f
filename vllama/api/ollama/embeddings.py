"""Vectors on the wire: float32 values written as briefly as float32 allows, or base64 bytes."""

from __future__ import annotations

import base64


def float32_list(vector: list[float]) -> list[float]:
    """The values as float32 and written as briefly as float32 allows (Ollama's []float32)."""
    import numpy as np

    return [float(s) for s in map(str, np.asarray(vector, dtype=np.float32))]


def float32_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes in base64, as OpenAI's `encoding_format: base64`."""
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
