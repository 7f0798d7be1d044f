"""The engine's interface, declared in full: what a loaded model does, what a model record holds,
and the typed values that cross the seam (completions in, chunks out).

Everything above the engine (the scheduler, serving, the API) reaches models and runners through
these declarations only; nothing probes an object's attributes to learn what it can do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict

if TYPE_CHECKING:
    from ..models.names import ModelName


class EngineError(Exception):
    """The engine failed for reasons that are not the client's (dead engine core, load failure)."""


class InvalidRequest(ValueError):
    """The engine refused a request before running it (a token id outside the vocabulary, a JSON
    schema it cannot compile): the client's mistake, a 400."""


# -- values crossing the seam -----------------------------------------------------------------


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]


class Logprob(TokenLogprob):
    """One sampled token's log probability, and with `top_logprobs` its most likely rivals."""

    top_logprobs: NotRequired[list[TokenLogprob]]


@dataclass(frozen=True)
class ToolCall:
    """A function call parsed out of the model's output."""

    id: str
    index: int
    name: str
    arguments: dict[str, Any]


@dataclass
class Completion:
    """One engine request: a tokenised prompt and vLLM SamplingParams keyword arguments."""

    prompt_ids: list[int]
    sampling: dict[str, Any]
    json_schema: dict[str, Any] | None = None  # `format`: a schema, or {} for any JSON object
    want_json: bool = False
    logprobs: int | None = None  # None: none; k: the sampled token's and the k most likely
    regex: str | None = None  # force the output to match (tests force tool calls with it)
    # The reply opens with a thought (think on, the prompt did not close it): `format`/`regex` apply
    # once the engine's reasoning parser sees the thought end. False: from the first token.
    thinks_first: bool = False
    images: list[bytes] = field(default_factory=list)  # encoded images, in prompt order (vision models)


@dataclass
class Chunk:
    """A piece of generated text; the last one carries done_reason, counts and timings (ns)."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    logprobs: list[Logprob] = field(default_factory=list)  # one per token in `token_ids`


# -- what runs a model --------------------------------------------------------------------------


class Engine(Protocol):
    """A loaded model of any kind, as the scheduler and /api/ps see it."""

    @property
    def context_length(self) -> int: ...

    @property
    def cache_bytes(self) -> int:
        """Memory held besides the weights (the KV cache), for /api/ps `size`."""
        ...

    @property
    def on_gpu(self) -> bool: ...

    @property
    def alive(self) -> bool:
        """False once the engine core died: the scheduler reloads it."""
        ...

    def unfinished(self) -> int:
        """Requests the engine holds (running or waiting)."""
        ...

    def shutdown(self) -> None:
        """Blocking: stop the engine and its processes (the scheduler calls it from a thread)."""
        ...


class Runner(Engine, Protocol):
    """A loaded generation model."""

    @property
    def chat_template(self) -> str:
        """The Jinja template the prompt is rendered with ("" when the model has none)."""
        ...

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer, which vLLM's tool parsers take."""
        ...

    def render_chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                    **template_kwargs: Any) -> str:
        """Blocking (CPU): the prompt text; serving calls it from a worker thread."""
        ...

    def tokenize(self, text: str) -> list[int]:
        """Blocking (CPU): token ids of a rendered prompt; serving calls it from a worker thread."""
        ...

    def complete(self, request: Completion) -> AsyncIterator[Chunk]: ...


class Embedder(Engine, Protocol):
    """A loaded embedding model."""

    async def embed(self, texts: list[str], truncate: bool = True, dimensions: int | None = None, *,
                    normalize: bool = True, limit: int | None = None) -> tuple[list[list[float]], int]:
        """(one vector per text, prompt tokens in all); vllama.engine.embedder.InputTooLong when
        an input is too long and `truncate` is false."""
        ...


class ModelRecord(Protocol):
    """A model as the store knows it (vllama.models.store.LocalModel), facts computed once."""

    @property
    def name(self) -> str:
        """Display name, e.g. `smollm2:135m`; `name.lower()` is the scheduler's key."""
        ...

    @property
    def model_name(self) -> ModelName: ...

    @property
    def path(self) -> Path:
        """The folder vLLM loads."""
        ...

    @property
    def digest(self) -> str:
        """sha256 hex of the manifest: a new digest means new weights or settings."""
        ...

    @property
    def size(self) -> int: ...

    @property
    def modified_at(self) -> datetime: ...

    @property
    def details(self) -> dict[str, Any]: ...

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    @property
    def files(self) -> list[dict[str, Any]]: ...

    @property
    def capabilities(self) -> list[str]: ...

    @property
    def for_embedding(self) -> bool:
        """Whether this is the view /api/embed loads (a generation model on the pooling runner)."""
        ...

    def embedding_view(self) -> ModelRecord:
        """The model as the embedding routes load it: capabilities ["embedding"], `for_embedding`."""
        ...

    @property
    def parameters(self) -> dict[str, Any]:
        """Option defaults: generation_config.json, then the Modelfile's PARAMETERs."""
        ...

    # The Modelfile's other layers, which every request is combined with (serving/modelfile_prompt)
    @property
    def template(self) -> str | None:
        """A TEMPLATE layer: Ollama's Go template text (or a Jinja one `create` was given)."""
        ...

    @property
    def system(self) -> str | None: ...

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The MESSAGE layer: history in Ollama's wire shape."""
        ...

    @property
    def gguf(self) -> Path | None:
        """The GGUF a GGUF-born model is served from (None for a safetensors model)."""
        ...
