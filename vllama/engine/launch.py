"""Starting a vLLM AsyncLLM quickly: on the CPU, its engine-core process is forked, not spawned.

vLLM's CPU platform forces `spawn` for every process it starts, because a forked OpenMP runtime that
has already run parallel work hangs in the child. A spawned engine core re-imports torch and vLLM
from scratch, which is most of a load on a small machine: measured here on the tiny model, the
engine came up in 12-30 s spawned against 3.4-5 s forked (same machine, same run, busy).

`vllama serve` never runs a kernel (it renders and tokenises; models run in their engine cores, and
a GGUF is dequantised in a child process of its own), so it holds no OpenMP pool to break, and
forking it is safe: the child starts with torch and vLLM imported. The engine core's own children
(the model worker in the `mp` layout) inherit the same method. Only a process that says so
(`allow_fork`, which `serve` calls) forks: any other (a test, a benchmark's in-process engine) may
have run torch kernels, and a child forked from it would hang, so it spawns as vLLM does.
`VLLAMA_ENGINE_START=spawn` switches the server back to vLLM's way.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ..config import env

if TYPE_CHECKING:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

# Engine configs and launches from concurrent loads must not interleave: building a config resets
# the start method to `spawn` (vLLM's CPU platform does), so each launch sets it right before.
_launching = threading.Lock()


_fork_allowed = False


def allow_fork() -> None:
    """This process runs no torch kernels (see above): its engines may fork."""
    global _fork_allowed
    _fork_allowed = True


def start_method() -> str:
    """`fork` in a process that allowed it, unless VLLAMA_ENGINE_START says `spawn`; else `spawn`."""
    return "fork" if _fork_allowed and env("VLLAMA_ENGINE_START") != "spawn" else "spawn"


def launch_async_llm(args: AsyncEngineArgs) -> AsyncLLM:
    """Blocking: the started engine (its core process up and its model loaded)."""
    from vllm.platforms import current_platform
    from vllm.v1.engine.async_llm import AsyncLLM
    from vllm.v1.executor import Executor

    if not current_platform.is_cpu():
        return AsyncLLM.from_engine_args(args)
    with _launching:  # AsyncLLM.from_engine_args, with the start method set between its two steps
        config = args.create_engine_config()
        os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = start_method()
        return AsyncLLM(vllm_config=config, executor_class=Executor.get_class(config),
                        log_requests=args.enable_log_requests, log_stats=not args.disable_log_stats)


def import_early() -> threading.Thread:
    """Import vLLM in the background while the server starts, so the first request does not wait for
    the whole import (5-13 s here) after it arrives; a load started meanwhile waits on the import lock
    for what is left. Call after the process environment for vLLM is set (vLLM reads it at import)."""

    def run() -> None:
        import vllm.engine.arg_utils  # noqa: F401
        import vllm.entrypoints.openai.chat_completion.protocol  # noqa: F401
        import vllm.tool_parsers  # noqa: F401
        import vllm.v1.engine.async_llm  # noqa: F401
        import vllm.v1.executor  # noqa: F401

    thread = threading.Thread(target=run, name="vllama-import-vllm", daemon=True)
    thread.start()
    return thread
