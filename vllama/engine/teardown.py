"""Stopping a vLLM AsyncLLM for good, from any thread, before the call returns.

vLLM's `AsyncLLM.shutdown` stops the engine-core process, but it leaves the zmq context (and its two
I/O threads) to the garbage collector, and when it is called off the thread of the loop that reads
the engine's output it only schedules the sockets' close on that loop, which may never run again (a
test's private loop). A context collected while one of its sockets is still open blocks forever in
`Context.term()`, on whichever thread the collector happens to run: a later test's fixture, or the
server's event loop some time after an unload. So here the sockets are closed and the context is
terminated explicitly, every time.

As an engine stops, its next start is prepared in the background (engine/launch.py, warm starts).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

log = logging.getLogger("vllama.engine")

# How long to wait for the output loop, on its own thread, to run the socket close vLLM queued there.
LOOP_WAIT_S = 30.0
# How long to wait for an engine-core process that vLLM has already stopped (or killed) to be reaped.
REAP_S = 10.0


def close_async_llm(engine: AsyncLLM, timeout: float | None = None) -> None:
    """Stop the engine-core process, close the client's zmq sockets and terminate its context.
    Idempotent; safe on the output loop's thread, on a worker thread while that loop runs (how the
    scheduler unloads), and with that loop stopped or closed."""
    from .launch import engine_stopped

    engine_stopped(engine)  # its next start is prepared meanwhile: stopping is mostly waiting for the core
    _close(engine, timeout)


def _close(engine: AsyncLLM, timeout: float | None) -> None:
    from vllm.v1.engine.core_client import MPClient
    from vllm.v1.engine.utils import CoreEngineProcManager

    client = engine.engine_core
    if not isinstance(client, MPClient):  # an in-process core holds no sockets (not used by AsyncLLM)
        engine.shutdown(timeout=timeout)
        return
    resources = client.resources
    task = resources.output_queue_task
    loop = task.get_loop() if task is not None else None
    # The loop is running on another thread: what is queued on it runs there, and is waited for.
    elsewhere = loop if loop is not None and loop.is_running() and not _on(loop) else None
    handler = engine.output_handler
    if handler is not None and not handler.done() and loop is not None and not loop.is_closed():
        # Stop reading outputs first: the dying core's last message would be logged as a failure.
        loop.call_soon_threadsafe(handler.cancel)
        if elsewhere is not None:
            _let_run(elsewhere)
    engine.shutdown(timeout=timeout)
    if elsewhere is not None:
        _let_run(elsewhere)  # vLLM queued the close there; a zmq.asyncio socket is closed on its loop's thread
    # Closed already, unless the loop was not running: then nothing else is using them.
    for sock in (resources.output_socket, resources.input_socket):
        if sock is not None and not sock.closed:
            sock.close(linger=0)
    if not resources.ctx.closed:
        resources.ctx.destroy(linger=0)  # every socket is closed, so term() returns at once
    manager = resources.engine_manager
    for proc in manager.processes if isinstance(manager, CoreEngineProcManager) else ():
        proc.join(REAP_S)  # reaped: vLLM kills a core that outlives its grace period but never waits for it


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _let_run(loop: asyncio.AbstractEventLoop) -> None:
    """Return once `loop` has run every callback queued on it before this call (they run in order)."""
    reached = threading.Event()
    try:
        loop.call_soon_threadsafe(reached.set)
    except RuntimeError:  # closed meanwhile: its callbacks never run
        return
    if not reached.wait(LOOP_WAIT_S):
        log.warning("the engine's output loop did not run for %.0f s; closing its sockets from here", LOOP_WAIT_S)
