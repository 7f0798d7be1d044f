"""One loaded embedding model on vLLM's AsyncLLM with the pooling runner.

vLLM pools (mean, CLS or last token, as the model's sentence-transformers config says) and is asked
for the raw pooled vector (`use_activation=False`: no L2 normalisation on the engine side), so that
each API decides: /api/embed and /v1/embeddings normalise, legacy /api/embeddings does not.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from pathlib import Path
from typing import Any

from .base import EngineError, ModelRecord
from .launch import launch_async_llm
from .teardown import close_async_llm

log = logging.getLogger("vllama.engine")
_ids = itertools.count()

# sentence-transformers keeps its trained input length here; vLLM caps max_model_len to it.
_ST_CONFIGS = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_xlm-roberta_config.json",
               "sentence_distilbert_config.json", "sentence_camembert_config.json", "sentence_albert_config.json",
               "sentence_xlnet_config.json")


class InputTooLong(ValueError):
    """An input is longer than the model's context and the request asked not to truncate."""

    def __init__(self) -> None:
        super().__init__("the input length exceeds the context length")


def max_input_tokens(model_path: str | Path, config: dict[str, Any]) -> int | None:
    """The longest input the model takes: sentence-transformers' max_seq_length, else the position table."""
    for name in _ST_CONFIGS:
        try:
            data = json.loads((Path(model_path) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("max_seq_length"), int):
            return data["max_seq_length"]
    value = config.get("max_position_embeddings")
    return value if isinstance(value, int) else None


def embedder_kwargs(settings: Any, model: ModelRecord) -> dict[str, Any]:
    """The server's engine arguments for an embedding model (or a generation model's embedding view):
    the same CPU/GPU defaults and overrides, with max_model_len no longer than the model takes (vLLM
    refuses a longer one)."""
    limit = max_input_tokens(model.path, model.config)
    kwargs = settings.engine_kwargs(str(model.path), limit)
    if limit and kwargs.get("max_model_len", 0) > limit:
        kwargs["max_model_len"] = limit
    if model.for_embedding:  # a generation model: vLLM's `--convert embed` (last-token pooling)
        kwargs["convert"] = "embed"
    return kwargs


def l2_normalize(vector: list[float]) -> list[float]:
    """Ollama's normalize(): unit length (a zero vector stays zero); NaN or Inf is an error."""
    total = 0.0
    for v in vector:
        if math.isnan(v) or math.isinf(v):
            raise ValueError("embedding contains NaN or Inf values")
        total += v * v
    scale = 1.0 / max(math.sqrt(total), 1e-12)
    return [v * scale for v in vector]


class VllmEmbedder:
    """Each input is its own engine request; they run concurrently and vLLM batches them."""

    kind = "embedding"
    cache_bytes = 0  # /api/ps reports the weights only for a pooling engine
    on_gpu = False  # and no VRAM share, as before the interface was declared

    def __init__(self, engine: Any, context_length: int):
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()
        self.context_length = context_length

    @classmethod
    def start(cls, engine_kwargs: dict[str, Any]) -> VllmEmbedder:
        """Blocking (seconds): call from a worker thread."""
        from vllm.engine.arg_utils import AsyncEngineArgs

        kwargs = {**engine_kwargs, "runner": "pooling"}
        engine = launch_async_llm(AsyncEngineArgs(**kwargs))
        try:
            return cls(engine, engine.model_config.max_model_len)
        except BaseException:
            close_async_llm(engine)  # a started engine is never left to the garbage collector
            raise

    def shutdown(self) -> None:
        """Blocking (seconds): the engine-core process, sockets and zmq context are gone on return."""
        close_async_llm(self.engine)

    def unfinished(self) -> int:
        return self.engine.get_num_unfinished_requests()

    @property
    def alive(self) -> bool:
        return not self.engine.errored

    # Generation entry points: an embedding model has none (the API checks capabilities first).
    def render_chat(self, messages: list[dict[str, Any]], tools: Any = None, **kwargs: Any) -> str:
        raise EngineError("this model only computes embeddings")

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=True))

    def complete(self, request: Any) -> Any:
        raise EngineError("this model only computes embeddings")

    def encode_inputs(self, texts: list[str], truncate: bool = True, limit: int | None = None) -> list[list[int]]:
        """Token ids with the model's special tokens ([CLS] ... [SEP]); cut to `limit` (default: the
        context length) keeping the closing special token, or InputTooLong when `truncate` is false."""
        limit = min(limit or self.context_length, self.context_length)
        ids = [list(x) for x in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        if any(len(x) > limit for x in ids):
            if not truncate:
                raise InputTooLong()
            long = [i for i, x in enumerate(ids) if len(x) > limit]
            cut = self.tokenizer([texts[i] for i in long], add_special_tokens=True, truncation=True,
                                 max_length=limit)["input_ids"]
            for i, x in zip(long, cut):
                ids[i] = list(x)
        return ids

    async def embed(self, texts: list[str], truncate: bool = True, dimensions: int | None = None, *,
                    normalize: bool = True, limit: int | None = None) -> tuple[list[list[float]], int]:
        """(one vector per text, in order; prompt tokens in all). `dimensions` keeps the first n
        components; `normalize` then scales each vector to unit length, as Ollama's /api/embed does."""
        ids = self.encode_inputs(texts, truncate, limit)
        vectors = await asyncio.gather(*(self._pool(x) for x in ids))
        out = []
        for vector in vectors:
            if dimensions and 0 < dimensions < len(vector):
                vector = vector[:dimensions]
            out.append(l2_normalize(vector) if normalize else vector)
        return out, sum(len(x) for x in ids)

    async def _pool(self, prompt_ids: list[int]) -> list[float]:
        from vllm import PoolingParams

        params = PoolingParams(task="embed", use_activation=False)
        request_id = f"vllama-embed-{next(_ids)}"
        final = None
        try:
            async for out in self.engine.encode({"prompt_token_ids": prompt_ids}, params, request_id):
                final = out
        except Exception as err:
            from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

            if isinstance(err, (EngineDeadError, EngineGenerateError)):
                raise EngineError(f"model runner failed: {err or type(err).__name__}") from err
            raise
        if final is None:
            raise EngineError("model runner returned no embedding")
        return final.outputs.data.float().tolist()
