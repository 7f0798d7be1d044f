"""`vllama serve`'s app in a thread of the test process, on a store of the test's own: for CLI tests
that list, show, create, copy and remove models but never generate (vLLM is imported on a first
load only, which never comes)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live_server import app_in_thread


@contextmanager
def serve_in_thread(models: Path) -> Iterator[str]:
    """The app `vllama serve` builds (vllama.server.build: a real ModelStore at `models`, the real
    scheduler, the loopback Host check), served by uvicorn on 127.0.0.1; yields the base URL."""
    from vllama.engine.args import EngineSettings
    from vllama.models.store import ModelStore
    from vllama.server import build

    with app_in_thread(build(EngineSettings.from_env(), ModelStore(models), bind_host="127.0.0.1")) as url:
        yield url


def copy_store(models: Path, dest: Path) -> Path:
    """A copy of the store at `models` that a test may change freely: the blobs (read-only, added
    by rename and never written in place) are hard links, everything else (manifests, the
    snapshots' relative symlinks) is copied as it is."""
    blobs = models / "blobs"

    def link_blobs(src: str, dst: str) -> None:
        if Path(src).parent == blobs:
            try:
                os.link(src, dst)
                return
            except OSError:
                pass
        shutil.copy2(src, dst)

    shutil.copytree(models, dest, symlinks=True, copy_function=link_blobs)
    return dest
