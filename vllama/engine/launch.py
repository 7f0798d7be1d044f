"""Starting a vLLM AsyncLLM quickly: on the CPU, its engine-core process is forked, not spawned, and
what one start of a model computes in the server is prepared again, off the critical path, for its next.

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

Warm starts (in the server, the process that allowed fork; `VLLAMA_WARM_START=0` turns them off), measured
on SmolLM2-135M on 2 cores (bench/cold_start.py):
- The server's heap is frozen for the garbage collector (`gc.freeze`) for the instant of the fork: the
  core inherits it frozen, so the full collections vLLM runs while it loads the model (three, and
  `freeze_gc_heap`) scan only the core's own objects, not the server's torch, transformers and vLLM
  (700k objects, a second per pass here).
- The modules the core would import itself (the CPU worker, its model runner, the attention backend)
  are imported with vLLM while the server starts, so no forked core imports them again.
- vLLM's AsyncLLM builds its renderer (a pool of deep copies of the tokenizer, 1-3 s here) in the
  server before it starts the core, on every load. As an engine stops (stopping is mostly waiting for
  its core to exit), the next start of the same engine arguments is prepared in the background: its
  resolved VllmConfig and a fresh renderer for it, which that start then uses instead of building
  them (waiting for them if they are still being built). At most `SPARES` are kept.
"""

from __future__ import annotations

import copy
import gc
import importlib
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from ..config import env

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

log = logging.getLogger("vllama.engine")

# Engine configs and launches from concurrent loads must not interleave: building a config resets
# the start method to `spawn` (vLLM's CPU platform does), so each launch sets it right before. A spare
# is built under the same lock, so no core is forked while the server builds one.
_launching = threading.Lock()

# Engine starts prepared for later (see the module's docstring), the most recently stopped last.
SPARES = 2


_fork_allowed = False
_warm_starts = True  # in a process that allowed fork, until it shuts down


def allow_fork() -> None:
    """This process (the server) runs no torch kernels (see above): its engines may fork, and it
    keeps what one start computes for the next (warm starts)."""
    global _fork_allowed
    _fork_allowed = True


def start_method() -> str:
    """`fork` in a process that allowed it, unless VLLAMA_ENGINE_START says `spawn`; else `spawn`."""
    return "fork" if _fork_allowed and env("VLLAMA_ENGINE_START") != "spawn" else "spawn"


def warm_starts() -> bool:
    """In the server, unless VLLAMA_WARM_START=0; off elsewhere (a test's engines would only spend
    CPU on spares)."""
    return _fork_allowed and _warm_starts and env("VLLAMA_WARM_START").lower() not in ("0", "false", "no", "off")


def stop_warm_starts() -> None:
    """No more spares (the server is shutting down: its engines are stopped for good); drop those kept."""
    global _warm_starts
    _warm_starts = False
    _spares.clear()


class _Spare:
    """The VllmConfig and renderer of an engine start, built ahead of it."""

    def __init__(self, args: AsyncEngineArgs):
        self.future: Future[tuple[VllmConfig, Any]] = Future()
        self.args = args


class _Spares:
    """Spares by engine arguments (their repr), each used once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: OrderedDict[str, _Spare] = OrderedDict()

    def take(self, key: str) -> _Spare | None:
        with self._lock:
            return self._by_key.pop(key, None)

    def put(self, key: str, spare: _Spare) -> None:
        with self._lock:
            old = self._by_key.pop(key, None)
            self._by_key[key] = spare
            dropped = [old] if old is not None else []
            while len(self._by_key) > SPARES:
                dropped.append(self._by_key.popitem(last=False)[1])
        for gone in dropped:
            gone.future.add_done_callback(_discard)

    def clear(self) -> None:
        with self._lock:
            dropped, self._by_key = list(self._by_key.values()), OrderedDict()
        for gone in dropped:
            gone.future.add_done_callback(_discard)

    def __len__(self) -> int:
        return len(self._by_key)


def _discard(future: Future) -> None:
    """A spare no start will use: its renderer's executors are shut down."""
    if future.exception() is None:
        _, renderer = future.result()
        renderer.shutdown()


_spares = _Spares()
# engine -> (its arguments' key, a copy of the arguments as given): what its next start would be
_started: weakref.WeakKeyDictionary[Any, tuple[str, AsyncEngineArgs]] = weakref.WeakKeyDictionary()


def _key(args: AsyncEngineArgs) -> str:
    return repr(args)


def launch_async_llm(args: AsyncEngineArgs) -> AsyncLLM:
    """Blocking: the started engine (its core process up and its model loaded)."""
    from vllm.platforms import current_platform
    from vllm.v1.engine.async_llm import AsyncLLM
    from vllm.v1.executor import Executor

    cpu = current_platform.is_cpu()
    warm = warm_starts()
    key = _key(args) if warm else ""
    given = copy.deepcopy(args) if warm else None  # as given: create_engine_config may adjust it
    prepared = _prepared(key) if warm else None  # waited for outside the lock its builder holds
    with _launching:  # AsyncLLM.from_engine_args, with the start method set between its two steps
        config, renderer = prepared or (args.create_engine_config(), None)
        if cpu:
            os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = start_method()
        fork = cpu and start_method() == "fork"
        if fork:
            _await_early_import()  # a lock an import holds on another thread would stay held in the child
        with _renderer_for(config, renderer), _frozen_heap(warm and fork), _sockets_closed_in_child(fork):
            engine = AsyncLLM(vllm_config=config, executor_class=Executor.get_class(config),
                              log_requests=args.enable_log_requests, log_stats=not args.disable_log_stats)
    if given is not None:
        _started[engine] = (key, given)
    return engine


def _prepared(key: str) -> tuple[VllmConfig, Any] | None:
    spare = _spares.take(key)
    if spare is None:
        return None
    try:
        return spare.future.result()
    except Exception:  # built as vLLM would; if that failed, the start fails the same way itself
        log.debug("the prepared engine start failed; starting without it", exc_info=True)
        return None


@contextmanager
def _renderer_for(config: VllmConfig, renderer: Any) -> Iterator[None]:
    """While an AsyncLLM is built for `config`, it takes `renderer` (built for it) rather than
    building its own. Other configs (an engine started elsewhere meanwhile) build theirs."""
    if renderer is None:
        yield
        return
    async_llm: Any = importlib.import_module("vllm.v1.engine.async_llm")
    original: Callable[..., Any] = async_llm.renderer_from_config

    def prepared(vllm_config: VllmConfig, **kwargs: Any) -> Any:
        return renderer if vllm_config is config and not kwargs else original(vllm_config, **kwargs)

    async_llm.renderer_from_config = prepared
    try:
        yield
    finally:
        async_llm.renderer_from_config = original


class _ForkHooks:
    """Hooks os.fork() runs while `during` is entered (registered with os.register_at_fork on first
    use, since hooks cannot be unregistered). A forked child starts with them off, so the core's own
    forks (its worker, in vLLM's multiprocess layout) run none of them."""

    def __init__(self, *, before: Callable[[], None] | None = None,
                 after_in_parent: Callable[[], None] | None = None,
                 after_in_child: Callable[[], None] | None = None):
        self.before, self.after_in_parent, self.after_in_child = before, after_in_parent, after_in_child
        self.on = False
        self.registered = False

    @contextmanager
    def during(self, on: bool) -> Iterator[None]:
        if not on:
            yield
            return
        if not self.registered:
            os.register_at_fork(before=self._before, after_in_parent=self._in_parent, after_in_child=self._in_child)
            self.registered = True
        self.on = True
        try:
            yield
        finally:
            self.on = False

    def _before(self) -> None:
        if self.on and self.before:
            self.before()

    def _in_parent(self) -> None:
        if self.on and self.after_in_parent:
            self.after_in_parent()

    def _in_child(self) -> None:
        if self.on:
            self.on = False
            if self.after_in_child:
                self.after_in_child()


def _frozen_heap(freeze: bool) -> AbstractContextManager[None]:
    """A core forked meanwhile starts with the server's objects frozen for the garbage collector
    (see above). Frozen for the fork alone, never longer: thawed in the server the moment after, its
    collector is as it was (a heap left frozen across the start, seconds, would make its next full
    collection come at once, a pause of a second here, on the first request)."""
    return _FREEZE_AT_FORK.during(freeze)


def _sockets_closed_in_child(fork: bool) -> AbstractContextManager[None]:
    """A core forked meanwhile closes the server's TCP sockets it inherited: the listener and every
    client connection. A keep-alive connection uvicorn closes would otherwise stay open while the
    core's copy lives, and a client's next request on it (from its pool) would never be read."""
    return _CLOSE_AT_FORK.during(fork)


def _close_inherited_sockets() -> None:
    import socket

    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # not a socket (or already closed)
        inet = sock.family in (socket.AF_INET, socket.AF_INET6)
        sock.detach()  # the object must not close it; only a TCP one is closed, below
        if inet:
            try:
                os.close(fd)
            except OSError:
                pass


_FREEZE_AT_FORK = _ForkHooks(before=gc.freeze, after_in_parent=gc.unfreeze)
_CLOSE_AT_FORK = _ForkHooks(after_in_child=_close_inherited_sockets)


def engine_stopped(engine: Any) -> None:
    """`engine` is being stopped for good: prepare its next start, in the background (see above)."""
    entry = _started.pop(engine, None)
    if entry is None or not warm_starts():
        return
    key, args = entry
    spare = _Spare(args)
    _spares.put(key, spare)
    threading.Thread(target=_build, args=(spare,), name="vllama-prepare-engine", daemon=True).start()


def _build(spare: _Spare) -> None:
    try:
        renderer_from_config = importlib.import_module("vllm.renderers").renderer_from_config
        started = time.perf_counter()
        with _launching:  # no core forks while the server builds this (see the lock)
            config = copy.deepcopy(spare.args).create_engine_config()
            renderer = renderer_from_config(config)
        log.debug("prepared the next start of %s in %.2f s", config.model_config.model,
                  time.perf_counter() - started)
        spare.future.set_result((config, renderer))
    except BaseException as err:
        spare.future.set_exception(err)


def import_early() -> threading.Thread:
    """Import vLLM in the background while the server starts, so the first request does not wait for
    the whole import (5-13 s here) after it arrives; a load started meanwhile waits on the import lock
    for what is left. Call after the process environment for vLLM is set (vLLM reads it at import).
    On the CPU, with warm starts, the engine core's own modules too: its forks then inherit them."""

    def run() -> None:
        import vllm.engine.arg_utils  # noqa: F401
        import vllm.entrypoints.openai.chat_completion.protocol  # noqa: F401
        import vllm.tool_parsers  # noqa: F401
        import vllm.v1.engine.async_llm  # noqa: F401
        import vllm.v1.executor  # noqa: F401

        if warm_starts():
            _import_core_modules()

    global _early
    thread = _early = threading.Thread(target=run, name="vllama-import-vllm", daemon=True)
    thread.start()
    return thread


_early: threading.Thread | None = None


def _await_early_import() -> None:
    """Let `import_early` finish before a fork: a module that thread is importing holds its import
    lock, which the forked child would inherit held by a thread it does not have, and wait on forever."""
    thread = _early
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join()


# What a forked CPU engine core imports after the fork (py-spy on it), when the server has not.
CORE_MODULES = (
    "vllm.v1.worker.cpu_worker",
    "vllm.v1.worker.cpu_model_runner",
    "vllm.v1.attention.backends.cpu_attn",
    "vllm.model_executor.layers.quantization.online.base",
    "vllm.model_executor.model_loader.default_loader",
)


def _import_core_modules() -> None:
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return  # a GPU's workers are spawned: nothing imported here reaches them
    for name in CORE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # moved in another vLLM: the core imports what it needs itself
            log.debug("could not import %s early", name, exc_info=True)
