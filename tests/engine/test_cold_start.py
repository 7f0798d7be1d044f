"""Warm starts (engine/launch.py): what one engine start computes is prepared again for the next.

vLLM is not imported here: the few modules launch.py reaches for are stand-ins in sys.modules.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from vllama.engine import launch


@dataclass
class FakeArgs:
    """Stands in for AsyncEngineArgs: a dataclass whose repr is the key of its spares."""

    model: str = "m"
    max_model_len: int = 4096
    enable_log_requests: bool = False
    disable_log_stats: bool = True
    built: list[Any] = field(default_factory=list, repr=False, compare=False)

    def create_engine_config(self) -> Any:
        config = types.SimpleNamespace(model_config=types.SimpleNamespace(model=self.model), args=repr(self))
        self.built.append(config)
        return config


class FakeRenderer:
    def __init__(self, config: Any):
        self.config = config
        self.closed = False

    def shutdown(self) -> None:
        self.closed = True


@pytest.fixture
def vllm_stubs(monkeypatch):
    """vllm.platforms (a CPU), vllm.v1.executor, vllm.renderers and an AsyncLLM that builds its renderer
    through its module's `renderer_from_config`, as vLLM's does; records what each engine got."""
    renderers: list[FakeRenderer] = []

    def renderer_from_config(config: Any, **kwargs: Any) -> FakeRenderer:
        renderers.append(FakeRenderer(config))
        return renderers[-1]

    async_llm = types.ModuleType("vllm.v1.engine.async_llm")

    class AsyncLLM:
        def __init__(self, vllm_config: Any, executor_class: Any, log_requests: bool, log_stats: bool):
            self.vllm_config = vllm_config
            self.renderer = sys.modules["vllm.v1.engine.async_llm"].renderer_from_config(vllm_config)
            self.frozen = _forked_child_freeze_count()  # as vLLM's CPU launch forks its engine core
            self.after = gc.get_freeze_count()

    async_llm.AsyncLLM = AsyncLLM  # type: ignore[attr-defined]
    async_llm.renderer_from_config = renderer_from_config  # type: ignore[attr-defined]
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: True)  # type: ignore[attr-defined]
    executor = types.ModuleType("vllm.v1.executor")
    executor.Executor = types.SimpleNamespace(get_class=lambda config: object)  # type: ignore[attr-defined]
    rendering = types.ModuleType("vllm.renderers")
    rendering.renderer_from_config = renderer_from_config  # type: ignore[attr-defined]
    for name, module in {"vllm.v1.engine.async_llm": async_llm, "vllm.platforms": platforms,
                         "vllm.v1.executor": executor, "vllm.renderers": rendering}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(launch, "_fork_allowed", True)
    monkeypatch.setattr(launch, "_warm_starts", True)
    monkeypatch.setattr(launch, "_spares", launch._Spares())
    monkeypatch.setattr(launch, "_early", None)
    monkeypatch.delenv("VLLAMA_WARM_START", raising=False)
    monkeypatch.delenv("VLLAMA_ENGINE_START", raising=False)
    monkeypatch.setenv("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    return types.SimpleNamespace(renderers=renderers, async_llm=async_llm)


def _forked_child_freeze_count() -> int:
    """Fork a child that reports how many objects its garbage collector had frozen, and exits."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once (no test machinery runs here)
        os.write(write, str(gc.get_freeze_count()).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        count = int(pipe.read() or -1)
    os.waitpid(pid, 0)
    return count


def _wait_for_spares() -> None:
    for thread in threading.enumerate():
        if thread.name == "vllama-prepare-engine":
            thread.join(10)


def test_warm_starts_only_in_the_server_and_switchable(monkeypatch):
    monkeypatch.setattr(launch, "_warm_starts", True)
    monkeypatch.delenv("VLLAMA_WARM_START", raising=False)
    monkeypatch.setattr(launch, "_fork_allowed", False)
    assert not launch.warm_starts()  # a test's or a benchmark's engines keep nothing
    monkeypatch.setattr(launch, "_fork_allowed", True)
    assert launch.warm_starts()
    for off in ("0", "false", "off", "No"):
        monkeypatch.setenv("VLLAMA_WARM_START", off)
        assert not launch.warm_starts()
    monkeypatch.setenv("VLLAMA_WARM_START", "1")
    assert launch.warm_starts()
    monkeypatch.setattr(launch, "_spares", launch._Spares())
    launch.stop_warm_starts()  # the server shuts down: nothing more is prepared
    assert not launch.warm_starts()


def test_a_reload_uses_the_config_and_renderer_prepared_when_its_engine_stopped(vllm_stubs):
    args = FakeArgs()
    first = launch.launch_async_llm(args)
    assert first.vllm_config is args.built[0] and first.renderer.config is first.vllm_config
    assert launch.os.environ["VLLM_WORKER_MULTIPROC_METHOD"] == "fork"

    launch.engine_stopped(first)  # what close_async_llm calls once the engine is gone
    _wait_for_spares()
    assert len(vllm_stubs.renderers) == 2  # the spare: built in the background, for the same arguments

    again = FakeArgs()
    second = launch.launch_async_llm(again)
    assert not again.built  # its config was resolved ahead of it
    assert second.renderer is vllm_stubs.renderers[1] and second.renderer.config is second.vllm_config
    assert not second.renderer.closed
    assert len(vllm_stubs.renderers) == 2
    # vLLM's own again once the engine is built
    assert vllm_stubs.async_llm.renderer_from_config is sys.modules["vllm.renderers"].renderer_from_config


def test_a_spare_serves_only_the_same_arguments_and_only_once(vllm_stubs):
    engine = launch.launch_async_llm(FakeArgs())
    launch.engine_stopped(engine)
    launch.engine_stopped(engine)  # stopped twice (close is idempotent): one spare
    _wait_for_spares()
    assert len(vllm_stubs.renderers) == 2

    bigger = launch.launch_async_llm(FakeArgs(max_model_len=8192))  # another context: built afresh
    assert bigger.renderer is vllm_stubs.renderers[2]
    same = launch.launch_async_llm(FakeArgs())
    assert same.renderer is vllm_stubs.renderers[1]
    third = launch.launch_async_llm(FakeArgs())  # the spare was used up
    assert third.renderer is vllm_stubs.renderers[3]


def test_spares_are_bounded_and_the_dropped_ones_shut_down(vllm_stubs, monkeypatch):
    monkeypatch.setattr(launch, "SPARES", 2)
    engines = [launch.launch_async_llm(FakeArgs(model=name)) for name in "abc"]
    for engine in engines:
        launch.engine_stopped(engine)
    _wait_for_spares()
    spares = vllm_stubs.renderers[3:]
    assert [r.config.model_config.model for r in spares] == ["a", "b", "c"]
    assert [r.closed for r in spares] == [True, False, False]  # the oldest went
    assert len(launch._spares) == 2
    launch.stop_warm_starts()
    assert [r.closed for r in spares] == [True, True, True]


def test_a_failed_spare_leaves_the_start_to_build_its_own(vllm_stubs):
    class Failing(FakeArgs):
        fail = False

        def create_engine_config(self) -> Any:
            if Failing.fail:
                raise RuntimeError("config")
            return super().create_engine_config()

    engine = launch.launch_async_llm(Failing())
    Failing.fail = True
    launch.engine_stopped(engine)
    _wait_for_spares()
    Failing.fail = False
    again = Failing()
    restarted = launch.launch_async_llm(again)
    assert len(again.built) == 1 and restarted.renderer.config is again.built[0]


def test_no_spares_without_warm_starts(vllm_stubs, monkeypatch):
    monkeypatch.setenv("VLLAMA_WARM_START", "0")
    engine = launch.launch_async_llm(FakeArgs())
    launch.engine_stopped(engine)
    _wait_for_spares()
    assert len(vllm_stubs.renderers) == 1 and len(launch._spares) == 0


def test_the_heap_is_frozen_for_the_fork_alone(vllm_stubs, monkeypatch):
    before = gc.get_freeze_count()
    engine = launch.launch_async_llm(FakeArgs())
    assert engine.frozen > max(before, 1000)  # the forked core inherits the server's objects frozen
    assert engine.after == before  # thawed in the server right after the fork, not after the start
    assert gc.get_freeze_count() == before
    assert _forked_child_freeze_count() == before  # a fork outside a launch: nothing frozen

    monkeypatch.setenv("VLLAMA_ENGINE_START", "spawn")  # a spawned core inherits nothing: no freeze
    assert launch.launch_async_llm(FakeArgs()).frozen == before
    monkeypatch.delenv("VLLAMA_ENGINE_START")
    monkeypatch.setenv("VLLAMA_WARM_START", "0")
    assert launch.launch_async_llm(FakeArgs()).frozen == before


def test_the_cores_own_forks_run_no_fork_hooks():
    """A forked core starts with the server's hooks off: its own fork (the model worker in vLLM's
    multiprocess layout) neither thaws the heap the core inherited frozen nor runs the hooks again."""
    read, write = os.pipe()
    with launch._frozen_heap(True):
        pid = os.fork()
        if pid == 0:  # the core: fork a worker, then report what is frozen here
            inherited = gc.get_freeze_count()
            worker = os.fork()
            if worker == 0:
                os._exit(0)
            os.waitpid(worker, 0)
            os.write(write, f"{inherited} {gc.get_freeze_count()}".encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        inherited, after_its_fork = map(int, pipe.read().split())
    os.waitpid(pid, 0)
    assert inherited > 1000 and after_its_fork == inherited


def test_a_fork_waits_for_the_early_import(vllm_stubs, monkeypatch):
    """A module the import thread is importing at the fork would stay locked in the child forever."""
    release = threading.Event()
    order: list[str] = []

    def importing() -> None:
        release.wait(10)
        order.append("imported")

    thread = threading.Thread(target=importing)
    thread.start()
    monkeypatch.setattr(launch, "_early", thread)
    threading.Timer(0.2, release.set).start()
    launch.launch_async_llm(FakeArgs())
    order.append("forked")
    assert order == ["imported", "forked"]


def test_the_renderer_stand_in_builds_for_any_other_config(vllm_stubs):
    config, other = object(), object()
    mine = FakeRenderer(config)
    with launch._renderer_for(config, mine):
        build = vllm_stubs.async_llm.renderer_from_config
        assert build(config) is mine
        assert build(other) is vllm_stubs.renderers[-1] and vllm_stubs.renderers[-1].config is other
    assert vllm_stubs.async_llm.renderer_from_config is sys.modules["vllm.renderers"].renderer_from_config
