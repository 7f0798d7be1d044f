"""A scripted runner for tests about HTTP shape only: framing, fields, errors, disconnects."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from vllama.api.app import build_app
from vllama.engine.base import Chunk, Completion, EngineError
from vllama.engine.scheduler import Scheduler
from vllama.models.names import InvalidName, ModelName
from vllama.models.store import ModelNotFound

WORDS = ["The", " sky", " is", " blue", "."]


@dataclass
class FakeRunner:
    context_length: int = 64
    delay: float = 0.0
    fail_after: int | None = None  # raise EngineError after this many chunks
    requests: list[Completion] = field(default_factory=list)
    cancelled: int = 0
    finished: int = 0
    alive: bool = True
    words: list[str] = field(default_factory=lambda: list(WORDS))
    chat_template: str = ""
    tokenizer: Any = field(default_factory=object)
    shutdowns: int = 0
    cache_bytes: int = 0
    on_gpu: bool = False
    # When set to an Event: every chunk from `hold_from` on (by default, after the first) waits until
    # it is set (a cancel still ends the wait), so a test knows the first chunk left while the rest
    # were not made yet, or (hold_from 0) that a request is in flight for exactly as long as it needs,
    # without pacing the chunks with `delay`. Never set: the request stays in progress until cancelled.
    hold: threading.Event | None = None
    hold_from: int = 1

    def unfinished(self) -> int:
        return 0

    def render_chat(self, messages: list[dict[str, Any]], tools: Any = None, **kwargs: Any) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def tokenize(self, text: str) -> list[int]:
        """`ord(c) % 500` for each character (lone surrogates included)."""
        if len(text) < 4096:
            return [ord(c) % 500 for c in text]
        # The same through numpy for long text: the hostile tests' 10-MB prompts took seconds here.
        import numpy as np

        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        return (codes % 500).tolist()

    def shutdown(self) -> None:
        self.shutdowns += 1

    async def embed(self, texts: list[str], truncate: bool = True, dimensions: int | None = None, *,
                    normalize: bool = True, limit: int | None = None) -> tuple[list[list[float]], int]:
        """Any model embeds, as in Ollama (its engine converted for pooling): a fixed vector per
        text, of unit length when normalised."""
        dim = dimensions or 4
        head = 1.0 if normalize else 2.0
        return [[head] + [0.0] * (dim - 1) for _ in texts], sum(len(self.tokenize(t)) for t in texts)

    async def complete(self, request: Completion):
        self.requests.append(request)
        n = min(request.sampling["max_tokens"], len(self.words))
        try:
            for i in range(n):
                if self.fail_after is not None and i >= self.fail_after:
                    raise EngineError("model runner failed: boom")
                await asyncio.sleep(self.delay)
                if i >= self.hold_from and self.hold is not None:
                    while not self.hold.is_set():
                        await asyncio.sleep(0.005)
                last = i == n - 1
                chunk = Chunk(text=self.words[i], token_ids=[i + 1])
                if last:
                    reason = "length" if n == request.sampling["max_tokens"] else "stop"
                    chunk = Chunk(text=self.words[i], token_ids=[i + 1], done=True, done_reason=reason,
                                  prompt_eval_count=len(request.prompt_ids), prompt_eval_duration=1000,
                                  eval_count=n, eval_duration=2000)
                yield chunk
            self.finished += 1
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


class FakeStore:
    def __init__(self, names: list[str], capabilities: list[str] = ("completion",)):
        self.models = {ModelName.parse(n).key: self._model(n, list(capabilities)) for n in names}

    @staticmethod
    def _model(name: str, capabilities: list[str]) -> Any:
        display = ModelName.parse(name).display
        # the fields of vllama.engine.base.ModelRecord
        model = SimpleNamespace(
            name=display, model_name=ModelName.parse(name), digest="ab" * 32, size=1000, config={}, capabilities=capabilities,
            details={"parent_model": "", "format": "safetensors", "family": "llama", "families": ["llama"],
                     "parameter_size": "1M", "quantization_level": "F32"},
            parameters={}, path=Path("/nonexistent"), manifest={}, files=[], template=None, system=None,
            messages=[], gguf=None,
            modified_at=datetime.fromtimestamp(0, timezone.utc), for_embedding=False,
        )
        # /api/embed's view of it, as LocalModel.embedding_view makes one
        model.embedding_view = lambda: SimpleNamespace(**{**vars(model), "capabilities": ["embedding"],
                                                          "for_embedding": True})
        return model

    def get(self, name: str) -> Any:
        key = ModelName.parse(name).key  # raises InvalidName
        if key not in self.models:
            raise ModelNotFound(name)
        return self.models[key]

    def list(self) -> list[Any]:
        return list(self.models.values())


def fake_app(runner: FakeRunner, names: list[str] = ("fake:latest",), capabilities: list[str] = ("completion",)):
    scheduler = Scheduler(lambda model: runner, max_loaded=2, check_every=0.05)
    return build_app(FakeStore(list(names), capabilities), scheduler, keep_alive=300.0)


__all__ = ["FakeRunner", "FakeStore", "fake_app", "InvalidName"]
