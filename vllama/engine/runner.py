"""One loaded model on vLLM's AsyncLLM: chat rendering, tokenisation, and a stream of typed chunks."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from .base import Chunk, Completion, EngineError, InvalidRequest

log = logging.getLogger("vllama.engine")
_ids = itertools.count()


class VllmRunner:
    """Each call to `complete` is its own engine request: vLLM batches them, nothing here serialises."""

    def __init__(self, engine: Any, context_length: int, cache_bytes: int = 0, on_gpu: bool = False):
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()
        self.context_length = context_length
        self.cache_bytes = cache_bytes  # for /api/ps `size`: weights + KV cache
        self.on_gpu = on_gpu

    @classmethod
    def start(cls, engine_kwargs: dict[str, Any]) -> VllmRunner:
        """Blocking (seconds to minutes): call from a worker thread."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**engine_kwargs)
        engine = AsyncLLM.from_engine_args(args)
        # Import the tool-call machinery here, in the loading thread, not on the event loop later.
        import vllm.entrypoints.openai.chat_completion.protocol  # noqa: F401
        import vllm.tool_parsers  # noqa: F401
        from vllm.platforms import current_platform

        return cls(engine, engine.model_config.max_model_len, engine_kwargs.get("kv_cache_memory_bytes") or 0,
                   not current_platform.is_cpu())

    def shutdown(self) -> None:
        self.engine.shutdown()

    @property
    def chat_template(self) -> str:
        return getattr(self.tokenizer, "chat_template", None) or ""

    def unfinished(self) -> int:
        """Requests the engine holds (running or waiting): 0 when every client was answered or aborted."""
        return self.engine.get_num_unfinished_requests()

    @property
    def alive(self) -> bool:
        return not self.engine.errored

    def render_chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                    **template_kwargs: Any) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=True, tokenize=False, **template_kwargs
        )

    def tokenize(self, text: str) -> list[int]:
        # The rendered template already holds any BOS the model wants.
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    async def complete(self, request: Completion) -> AsyncIterator[Chunk]:
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        structured = None
        if request.regex:
            structured = StructuredOutputsParams(regex=request.regex)
        elif request.json_schema:
            structured = StructuredOutputsParams(json=request.json_schema)
        elif request.want_json:
            structured = StructuredOutputsParams(json_object=True)
        try:
            params = SamplingParams(
                **request.sampling, output_kind=RequestOutputKind.DELTA, structured_outputs=structured,
                logprobs=request.logprobs,
            )
        except (ValueError, VLLMClientError) as err:  # vLLM's VLLMValidationError
            raise InvalidRequest(str(err)) from err
        request_id = f"vllama-{next(_ids)}"
        started = time.perf_counter_ns()
        first = last = 0
        count = 0
        answered = False
        try:
            stream = self.engine.generate({"prompt_token_ids": request.prompt_ids}, params, request_id)
            async for out in stream:
                answered = True
                now = time.perf_counter_ns()
                completion = out.outputs[0]
                if completion.token_ids:
                    count += len(completion.token_ids)
                    first = first or now
                    last = now
                logprobs = _ollama_logprobs(completion, request.logprobs) if request.logprobs is not None else []
                if not out.finished:
                    if completion.text or completion.token_ids:
                        yield Chunk(text=completion.text, token_ids=list(completion.token_ids), logprobs=logprobs)
                    continue
                first = first or now
                yield Chunk(
                    text=completion.text,
                    token_ids=list(completion.token_ids),
                    done=True,
                    done_reason="length" if completion.finish_reason == "length" else "stop",
                    prompt_eval_count=len(request.prompt_ids),
                    prompt_eval_duration=max(first - started, 1),
                    eval_count=count,
                    eval_duration=max(last - first, 1),
                    logprobs=logprobs,
                )
        except Exception as err:
            from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

            if isinstance(err, (EngineDeadError, EngineGenerateError)):
                raise EngineError(f"model runner failed: {err or type(err).__name__}") from err
            if isinstance(err, (ValueError, VLLMClientError)) and not answered:  # input processing refused it
                raise InvalidRequest(str(err)) from err
            raise


def _entry(token: str | None, logprob: float) -> dict[str, Any]:
    text = token or ""
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def _ollama_logprobs(completion: Any, top: int) -> list[dict[str, Any]]:
    """vLLM's per-position {token_id: Logprob} -> Ollama's [{token, logprob, bytes, top_logprobs}]."""
    out = []
    for token_id, candidates in zip(completion.token_ids, completion.logprobs or []):
        chosen = candidates[token_id]
        item = _entry(chosen.decoded_token, chosen.logprob)
        if top:
            ranked = sorted(candidates.values(), key=lambda c: c.logprob, reverse=True)[:top]
            item["top_logprobs"] = [_entry(c.decoded_token, c.logprob) for c in ranked]
        out.append(item)
    return out
