"""One loaded model on vLLM's AsyncLLM: chat rendering, tokenisation, and a stream of typed chunks."""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from . import grammars
from .base import Chunk, Completion, EngineError, InvalidRequest, Logprob, TokenLogprob
from .launch import launch_async_llm
from .teardown import close_async_llm

log = logging.getLogger("vllama.engine")
_ids = itertools.count()


class VllmRunner:
    """Each call to `complete` is its own engine request: vLLM batches them, nothing here serialises."""

    def __init__(self, engine: Any, context_length: int, cache_bytes: int = 0, on_gpu: bool = False,
                 reasoning_parser: str = ""):
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()
        self.context_length = context_length
        self.cache_bytes = cache_bytes  # for /api/ps `size`: weights + KV cache
        self.on_gpu = on_gpu
        # The engine's structured-output reasoning parser (vLLM's name, "" for none), and whether it fits
        # this tokenizer: only then does `format` wait for the end of a thought (requests that think first).
        self.reasoning_parser = reasoning_parser
        self.thinks_first = _parser_fits(reasoning_parser, self.tokenizer)
        # request id -> what it asked for: logged when the engine core dies, to name the mix that killed it
        self._in_flight: dict[str, str] = {}
        self._death_logged = False

    @classmethod
    def start(cls, engine_kwargs: dict[str, Any]) -> VllmRunner:
        """Blocking (seconds to minutes): call from a worker thread."""
        from vllm.engine.arg_utils import AsyncEngineArgs

        engine = launch_async_llm(AsyncEngineArgs(**engine_kwargs))
        try:
            # Import the tool-call machinery here, in the loading thread, not on the event loop later.
            import vllm.entrypoints.openai.chat_completion.protocol  # noqa: F401
            import vllm.tool_parsers  # noqa: F401
            from vllm.platforms import current_platform

            from .memory import allocated_kv_bytes

            # the KV cache as the started engine allocated it (its blocks), for /api/ps
            return cls(engine, engine.model_config.max_model_len, allocated_kv_bytes(engine.vllm_config),
                       not current_platform.is_cpu(),
                       engine.vllm_config.structured_outputs_config.reasoning_parser or "")
        except BaseException:
            close_async_llm(engine)  # a started engine is never left to the garbage collector
            raise

    def shutdown(self) -> None:
        """Blocking (seconds): the engine-core process, sockets and zmq context are gone on return."""
        close_async_llm(self.engine)

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
            image_parts(messages), tools=tools or None, add_generation_prompt=True, tokenize=False,
            **template_kwargs
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
        elif request.want_json and grammars.JSON_OBJECT:  # bounded whitespace, as Ollama's grammar
            structured = StructuredOutputsParams(grammar=grammars.JSON_OBJECT)
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
        self._in_flight[request_id] = _describe(request)
        started = time.perf_counter_ns()
        first = last = 0
        count = 0
        answered = False
        try:
            prompt: dict[str, Any] = {"prompt_token_ids": request.prompt_ids}
            if request.images:  # the rendered prompt holds the model's image placeholders
                prompt["multi_modal_data"] = {"image": decode_images(request.images)}
            stream = self.engine.generate(prompt, params, request_id, **self._reasoning_gate(request, structured))
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
                    # the engine's prompt: each image placeholder expanded to the image's tokens
                    prompt_eval_count=len(out.prompt_token_ids or request.prompt_ids),
                    prompt_eval_duration=max(first - started, 1),
                    eval_count=count,
                    eval_duration=max(last - first, 1),
                    logprobs=logprobs,
                )
        except Exception as err:
            from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

            if isinstance(err, (EngineDeadError, EngineGenerateError)):
                self._log_death(request_id)
                raise EngineError(f"model runner failed: {err or type(err).__name__}") from err
            if isinstance(err, (ValueError, VLLMClientError)) and not answered:  # input processing refused it
                raise InvalidRequest(str(err)) from err
            raise
        finally:
            self._in_flight.pop(request_id, None)

    def _reasoning_gate(self, request: Completion, structured: Any) -> dict[str, Any]:
        """When the engine's grammar starts, for an engine with a reasoning parser (vLLM decides per
        request: `reasoning_ended=True` constrains from the first token; None lets the engine's parser
        find the end of the thought, in the prompt or the reply, and constrain from there).

        A request that does not think first is constrained from its first token: otherwise the engine
        would wait for an end-of-thought token that never comes, and the reply would run free. So is
        every request where the parser does not fit the tokenizer: the engine core then never builds it."""
        if structured is None or not self.reasoning_parser:
            return {}
        return {"reasoning_ended": None if request.thinks_first and self.thinks_first else True}

    def _log_death(self, request_id: str) -> None:
        """Once per engine: the requests in flight when its core died (the first failing one first)."""
        if self._death_logged:
            return
        self._death_logged = True
        mix = [self._in_flight.get(request_id, "?")] + [d for r, d in self._in_flight.items() if r != request_id]
        log.error("engine core died with %d requests in flight: %s", len(mix), "; ".join(mix))


def _parser_fits(name: str, tokenizer: Any) -> bool:
    """Whether vLLM's reasoning parser `name` can be built for the tokenizer (its think tokens are in
    the vocabulary): the engine core builds it lazily, and a failure there would kill the engine."""
    if not name or tokenizer is None:
        return False
    from vllm.reasoning import ReasoningParserManager

    try:
        ReasoningParserManager.get_reasoning_parser(name)(tokenizer)
    except Exception as err:  # KeyError: no such parser; ValueError/RuntimeError: tokens missing
        log.info("reasoning parser %s does not fit this tokenizer (%s): format constrains from the start", name, err)
        return False
    return True


def image_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ollama's `images` on a message -> the content parts vision chat templates read: one
    {"type": "image"} per image (the template writes the model's placeholder), then the text."""
    out = []
    for message in messages:
        if not message.get("images"):
            out.append(message)
            continue
        rest = {k: v for k, v in message.items() if k != "images"}
        text = rest.get("content") or ""
        rest["content"] = [{"type": "image"} for _ in message["images"]] + [{"type": "text", "text": text}]
        out.append(rest)
    return out


def decode_images(images: list[bytes]) -> list[Any]:
    """Encoded images -> PIL images, vLLM's multimodal input; an undecodable one is the client's error."""
    import io

    from PIL import Image, UnidentifiedImageError

    out = []
    for data in images:
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise InvalidRequest(f"failed to process inputs: image: unknown format ({err})") from None
        out.append(image.convert("RGB"))
    return out


def _describe(request: Completion) -> str:
    """The parts of a request that decide which engine code paths a step takes."""
    s = request.sampling
    parts = [f"prompt={len(request.prompt_ids)}", f"max_tokens={s.get('max_tokens')}",
             f"temperature={s.get('temperature')}"]
    parts += [f"{k}={s[k]}" for k in ("seed", "top_k", "top_p", "min_p", "repetition_penalty",
                                      "presence_penalty", "frequency_penalty", "stop") if s.get(k)]
    if request.json_schema is not None or request.want_json or request.regex:
        parts.append("structured")
    if request.logprobs is not None:
        parts.append(f"logprobs={request.logprobs}")
    return " ".join(parts)


# A candidate the grammar (`format`) masked out has a logprob of -inf, which JSON cannot carry; vLLM's
# own OpenAI server answers -9999.0 for it, and so does vllama.
MIN_LOGPROB = -9999.0


def _entry(token: str | None, logprob: float) -> TokenLogprob:
    text = token or ""
    finite = logprob if math.isfinite(logprob) else MIN_LOGPROB
    return {"token": text, "logprob": max(finite, MIN_LOGPROB), "bytes": list(text.encode("utf-8"))}


def _ollama_logprobs(completion: Any, top: int) -> list[Logprob]:
    """vLLM's per-position {token_id: Logprob} -> Ollama's [{token, logprob, bytes, top_logprobs}]."""
    out: list[Logprob] = []
    for token_id, candidates in zip(completion.token_ids, completion.logprobs or []):
        chosen = candidates[token_id]
        item = cast(Logprob, _entry(chosen.decoded_token, chosen.logprob))
        if top:
            ranked = sorted(candidates.values(), key=lambda c: c.logprob, reverse=True)[:top]
            item["top_logprobs"] = [_entry(c.decoded_token, c.logprob) for c in ranked]
        out.append(item)
    return out
