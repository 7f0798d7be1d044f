"""Small valid GGUF files for pull tests: a header that says what they are and one float tensor."""

from __future__ import annotations

from pathlib import Path

FILE_TYPES = {"F16": 1, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_S": 16}


def write_gguf(path: Path, file_type: str = "Q4_K_M", rows: int = 300, seed: int = 0,
               chat_template: str | None = None) -> bytes:
    """Write a GGUF (llama, 2048 context, `rows` x 256 float32 weights) and return its bytes."""
    import numpy as np
    from gguf import GGUFWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "llama")
    writer.add_context_length(2048)
    writer.add_file_type(FILE_TYPES[file_type])
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.random.default_rng(seed).random((rows, 256), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()
