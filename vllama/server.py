"""`vllama serve`: the model store, the engine scheduler and the HTTP app on uvicorn."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import TYPE_CHECKING

from .config import env, env_int, is_loopback, server_host
from .engine.args import COMMON_ARGS, EngineSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .engine.base import Engine
    from .models.store import LocalModel, ModelStore

log = logging.getLogger("vllama")


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group("engine (vLLM AsyncEngineArgs; also VLLAMA_<NAME> env vars)")
    for flag, (name, kind) in COMMON_ARGS.items():
        if kind is bool:
            engine.add_argument(f"--{flag}", dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            engine.add_argument(f"--{flag}", dest=name, type=kind, default=None)
    engine.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="any other AsyncEngineArgs field, e.g. --engine-arg enable_prefix_caching=false")
    engine.add_argument("--engine-layout", choices=["inproc", "mp"], default=None,
                        help="inproc: model worker inside the engine-core process (default on CPU); "
                             "mp: vLLM's default separate worker process")


def settings_from_args(args: argparse.Namespace) -> EngineSettings:
    flags = {name: getattr(args, name, None) for _, (name, _) in COMMON_ARGS.items()}
    settings = EngineSettings.from_env(flags, args.engine_arg)
    if args.engine_layout:
        settings.inproc_worker = args.engine_layout == "inproc"
    return settings


def build(settings: EngineSettings, store: ModelStore | None = None, bind_host: str | None = None) -> Starlette:
    """The app with a real store and a vLLM-backed scheduler (vllm is imported on first load)."""
    from .api.app import build_app
    from .engine.args import on_gpu
    from .engine.memory import budget as memory_budget
    from .engine.memory import Estimate, device_memory, parse_bytes
    from .engine.scheduler import Scheduler, load_timeout
    from .engine.stats import watch
    from .models.store import ModelStore

    store = store or ModelStore()

    def start_runner(model: LocalModel, context: int = 0) -> Engine:
        """An engine for the model; `context`: a request's num_ctx above the default context."""
        from .engine.gguf_args import gguf_engine_kwargs, native_gguf

        native = native_gguf(model, store.root)  # on a GPU with vLLM's GGUF loader: the GGUF as is
        if native is None:
            model = store.servable(model)  # else a GGUF-born model is dequantised here, once, on its first load
        if "embedding" in model.capabilities:
            from .engine.embedder import VllmEmbedder, embedder_kwargs

            kwargs = embedder_kwargs(settings, model)
            kwargs.update(settings.pooling_memory_kwargs(model.config, model.files, kwargs["max_model_len"]))
            embedder = VllmEmbedder.start(kwargs)
            watch(embedder, embedder.engine)  # vLLM's figures for /metrics
            return embedder
        from .engine.parsers import reasoning_parser_name
        from .engine.runner import VllmRunner
        from .models.info import chat_template, trained_context

        max_len = trained_context(model.config)
        # the reasoning parser serving reads replies with (serving/replies.py), for `format` after a thought
        reasoning = reasoning_parser_name(str(model.config.get("model_type", "")), chat_template(model))
        kwargs = settings.engine_kwargs(str(model.path), max_len, model.config, model.files, context=context,
                                        reasoning_parser=reasoning)
        runner = VllmRunner.start(gguf_engine_kwargs(kwargs, *native) if native else kwargs)
        watch(runner, runner.engine)
        return runner

    def need(model: LocalModel) -> Estimate:
        from .models.info import trained_context

        return settings.estimate(model.config, model.files, trained_context(model.config), on_gpu())

    def budget() -> int:
        overhead = parse_bytes(env("OLLAMA_GPU_OVERHEAD") or "0")
        return memory_budget(env("VLLAMA_MEMORY") or None, device_memory(on_gpu()), overhead)

    scheduler = Scheduler(start_runner, max_loaded=env_int("OLLAMA_MAX_LOADED_MODELS", 0) or 3,
                          max_queue=env_int("OLLAMA_MAX_QUEUE", 512), budget=budget, need=need,
                          load_timeout=load_timeout())
    return build_app(store, scheduler, bind_host=bind_host)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    EngineSettings.preload_cpu_libraries()  # re-execs on a CPU machine (engine/cpu_defaults.py)
    settings = settings_from_args(args)
    settings.apply_process_env()
    from .engine.launch import allow_fork, import_early

    allow_fork()  # this process runs no kernels: engine cores are forked from it, not spawned
    if env("VLLAMA_IMPORT_EARLY").lower() not in ("0", "false", "no", "off"):
        import_early()  # overlaps vLLM's import with the server's start and the first request's arrival
    hp = server_host()
    if not is_loopback(hp.host):
        log.warning("listening on %s: reachable from other machines", hp.host)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build(settings, bind_host=hp.host)
    log.info("vllama listening on %s", hp.url)
    preload = [name.strip() for name in env("VLLAMA_PRELOAD").split(",") if name.strip()]
    if preload:
        threading.Thread(target=_preload, args=(hp.url, preload), name="vllama-preload", daemon=True).start()
    uvicorn.run(app, host=hp.host, port=hp.port, log_level="warning", timeout_graceful_shutdown=5)


def _preload(url: str, names: list[str]) -> None:
    """Load the VLLAMA_PRELOAD models the way an Ollama user does: an empty generate request each,
    sent once the server answers, one after another."""
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.head(url + "/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    key = env("VLLAMA_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for name in names:
        try:
            response = httpx.post(url + "/api/generate", json={"model": name}, headers=headers, timeout=None)
            if response.status_code != 200:
                log.warning("preloading %s failed: %s", name, response.text.strip())
        except httpx.HTTPError as err:
            log.warning("preloading %s failed: %s", name, err)
