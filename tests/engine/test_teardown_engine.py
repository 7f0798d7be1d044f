"""Stopping a real engine leaves nothing to the garbage collector: the engine-core process reaped,
both zmq sockets closed and the context terminated, however the caller's event loop stands.

The leak this pins: shut down while the loop that reads the engine's output was stopped (as a
test's private loop is between calls), vLLM only queued the sockets' close on that loop, so they
stayed open; a later garbage collection of their context then blocked forever in Context.term()."""

from __future__ import annotations

import asyncio

import psutil
import pytest

from vllama.engine.args import EngineSettings
from vllama.engine.base import Completion

pytestmark = pytest.mark.engine


def start(folder):
    settings = EngineSettings.from_env({"kv_cache_memory_bytes": 64 << 20})
    settings.apply_process_env()
    from vllama.engine.runner import VllmRunner

    return VllmRunner.start(settings.engine_kwargs(str(folder), 2048))


async def answer(runner) -> int:
    request = Completion(runner.tokenize("hello"), {"temperature": 0.0, "max_tokens": 4})
    return len([chunk async for chunk in runner.complete(request)])


def assert_released(runner, client) -> None:
    resources = client.resources
    assert resources.output_socket.closed and resources.input_socket.closed
    assert resources.ctx.closed  # terminated: its I/O threads are gone, nothing left for the GC
    assert [p.exitcode is not None for p in resources.engine_manager.processes] == [True]  # exited and reaped
    assert not [c for c in psutil.Process().children() if "EngineCor" in c.name()]
    assert not runner.alive


def test_shutdown_while_the_output_loop_is_stopped(tiny_folder):
    runner = start(tiny_folder)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(answer(runner)) >= 1
    client = runner.engine.engine_core
    runner.shutdown()  # the loop holding the engine's output tasks is not running
    assert_released(runner, client)
    runner.shutdown()  # idempotent
    loop.close()


def test_shutdown_from_a_worker_thread_while_the_loop_runs(tiny_folder):
    async def go():
        runner = await asyncio.to_thread(start, tiny_folder)
        assert await answer(runner) >= 1
        client = runner.engine.engine_core
        await asyncio.to_thread(runner.shutdown)  # how the scheduler unloads
        assert_released(runner, client)
        assert runner.engine.output_handler.done() and client.resources.output_queue_task.done()

    asyncio.run(go())
