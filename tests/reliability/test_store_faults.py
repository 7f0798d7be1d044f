"""Faults during model management: pulls cut at random points, a disk that fills up mid-pull, a
delete racing a pull of the same model. After each, the store is consistent (every manifest names
blobs that exist and hash to their names, every snapshot links to them, nothing unreadable) and
usable (the next pull completes and the model generates)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.fake_engine import FakeRunner
from tests.live_server import HTTP, app_in_thread
from tests.models.fake_repo import write_tiny_model
from tests.models.hub_stand_in import HubStandIn
from vllama.api.app import build_app
from vllama.engine.scheduler import Scheduler
from vllama.models import pull as pull_module
from vllama.models.store import ModelStore

REPO = "acme/Tiny-Instruct"
WEIGHTS = "model.safetensors"


PACED = 0.01  # s per 16 KB chunk: the weights (512 KB) take about 0.3 s, so cuts and races land mid-download


def paced(hub: HubStandIn, on: bool) -> None:
    """On: the stand-in as these tests always had it, for the cuts and races, whose timing it sets.
    Off, where no cut or race needs it: no pause between chunks, and TCP_NODELAY, so a response's
    body does not wait ~40 ms for the client's delayed ACK (Nagle's algorithm) after its head. The
    bytes served and the points where connections drop are the same, only sooner."""
    hub.delay = PACED if on else 0
    hub._server.RequestHandlerClass.disable_nagle_algorithm = not on


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The Hub stand-in, paced (see `paced`)."""
    stand_in = HubStandIn(delay=PACED, chunk=16 * 1024).start()
    stand_in.add_folder(REPO, write_tiny_model(tmp_path / "remote", rows=2000))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"models": {"tiny": {"latest": REPO}}}))
    monkeypatch.setenv("VLLAMA_CATALOG", str(catalog))
    monkeypatch.setenv("HF_ENDPOINT", stand_in.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # read once, at import
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    yield stand_in
    stand_in.stop()


class _InFlight:
    """The app, counting what it still has under way: HTTP requests being answered, and jobs in the
    server loop's default executor (a pull's downloads, publishing, manifest writes). A pull whose
    client went away runs on until the server sees the disconnect; its threads, until they finish."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.changed = threading.Condition()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # first, on the server's loop: before any to_thread
            asyncio.get_running_loop().set_default_executor(_CountingExecutor(self))
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self._add(1)
        try:
            await self.app(scope, receive, send)
        finally:
            self._add(-1)

    def _add(self, n: int) -> None:
        with self.changed:
            self.count += n
            self.changed.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count == 0, timeout), "the server is still at work"


class _CountingExecutor(ThreadPoolExecutor):
    def __init__(self, app: _InFlight):
        super().__init__(thread_name_prefix="store-faults")
        self.app = app

    def submit(self, fn, /, *args, **kwargs):
        self.app._add(1)
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self.app._add(-1)
            raise
        future.add_done_callback(lambda _: self.app._add(-1))
        return future


def serve(root: Path, in_flight: list | None = None):
    store = ModelStore(root)
    app = _InFlight(build_app(store, Scheduler(lambda m: FakeRunner(), check_every=0.05), keep_alive=300.0))
    if in_flight is not None:
        in_flight.append(app)
    return store, app_in_thread(app)


def assert_consistent(store: ModelStore) -> list[str]:
    """Every manifest loads, its blobs exist with the right content, its snapshot links to them."""
    names = []
    for name, path in store._manifest_paths():
        model = store.get(name)  # raises on a manifest that cannot be served
        for f in model.files:
            blob = store.blob_path(f["digest"])
            assert blob.is_file(), f"{name}: {f['path']} names missing blob {f['digest']}"
            assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == f["digest"]
            assert (model.path / f["path"]).resolve() == blob.resolve()
        names.append(model.name)
    for blob in store.blobs_dir.glob("sha256-*") if store.blobs_dir.is_dir() else []:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name[7:], f"corrupt blob {blob.name}"
    assert len(store.list()) == len(names)
    return names


def usable(url: str, store: ModelStore, name: str = "tiny") -> None:
    r = HTTP.post(url + "/api/pull", json={"model": name, "stream": False}, timeout=60)
    assert r.json() == {"status": "success"}, r.text
    assert assert_consistent(store) == ["tiny:latest"]
    r = HTTP.post(url + "/api/generate", json={"model": name, "prompt": "hi", "stream": False}, timeout=30)
    assert r.status_code == 200 and r.json()["done"] is True


def _wait_for_pulls_to_stop(app: _InFlight, timeout: float = 15) -> None:
    """Until the abandoned pull is over: the server has finished with its request (which closes the
    pull and tells its worker to stop at its next chunk) and with every thread job it started.
    (Before: until partial/ stayed still for 0.3 s, at least 0.3 s a cut.)"""
    app.wait_idle(timeout)


def test_pulls_cut_at_random_points(tmp_path, hub):
    """The client goes away after a random time, four times; then a pull runs to the end."""
    rng = random.Random(20240607)
    in_flight: list[_InFlight] = []
    store, served = serve(tmp_path / "models", in_flight)
    with served as url:
        for _ in range(4):
            cut = rng.uniform(0.0, 0.5)
            with HTTP.stream("POST", url + "/api/pull", json={"model": "tiny"}, timeout=30) as r:
                start = time.monotonic()
                for _line in r.iter_lines():
                    if time.monotonic() - start > cut:
                        break
            _wait_for_pulls_to_stop(in_flight[0])
            names = assert_consistent(store)
            assert names in ([], ["tiny:latest"])
        paced(hub, False)  # the cuts are over
        usable(url, store)  # resuming from what the cut pulls left (tests/models/test_pull.py checks the Range)


def test_hub_drops_connections_at_random_points(tmp_path, hub):
    rng = random.Random(7)
    paced(hub, False)  # the drops are at byte offsets, not times
    store, served = serve(tmp_path / "models")
    weights = hub.repos[REPO].files[WEIGHTS]
    key = WEIGHTS
    with served as url:
        for _ in range(2):
            hub.drop_after[key] = rng.randrange(1, len(weights))
            r = HTTP.post(url + "/api/pull", json={"model": "tiny", "stream": False}, timeout=60)
            assert r.json() == {"status": "success"}, r.text
            assert assert_consistent(store) == ["tiny:latest"]
            HTTP.request("DELETE", url + "/api/delete", json={"model": "tiny"})
            assert assert_consistent(store) == []
        usable(url, store)


# -- a full disk --------------------------------------------------------------------------------

def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _check_full_disk_failure(url: str, store: ModelStore) -> None:
    r = HTTP.post(url + "/api/pull", json={"model": "tiny", "stream": False}, timeout=60)
    assert r.status_code == 500 and "No space left on device" in r.json()["error"], r.text
    with HTTP.stream("POST", url + "/api/pull", json={"model": "tiny"}, timeout=60) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert "No space left on device" in lines[-1]["error"] and not any(x.get("status") == "success" for x in lines)
    assert assert_consistent(store) == []
    assert HTTP.get(url + "/api/tags").json() == {"models": []}
    assert HTTP.head(url + "/").status_code == 200


def test_disk_fills_up_during_a_pull(tmp_path, hub):
    """On a 256 KiB tmpfs the 512 KB weights cannot land; more room, and the same pull completes."""
    paced(hub, False)  # no race here
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "256k"):
        pytest.skip("mounting a tmpfs is not permitted here (test_disk_full_simulated covers the same path)")
    try:
        store, served = serve(disk / "models")
        with served as url:
            _check_full_disk_failure(url, store)
            # the partial download stays (to resume), so the disk stays full until the operator acts
            assert subprocess.run(["mount", "-o", "remount,size=4m", str(disk)]).returncode == 0
            usable(url, store)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_disk_full_simulated(tmp_path, hub, monkeypatch):
    """The same failure where mounting is not allowed: the download's writes fail with ENOSPC."""
    real_fetch = pull_module.Downloader._fetch
    head = hub.repos[REPO].files[WEIGHTS][:100_000]

    def full(self, url, dest, have):
        if dest.name.startswith("sha256-"):  # the weights; small files go through first
            dest.write_bytes(head)  # what fitted before the disk was full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fetch(self, url, dest, have)

    monkeypatch.setattr(pull_module.Downloader, "_fetch", full)
    paced(hub, False)  # no race here
    store, served = serve(tmp_path / "models")
    with served as url:
        _check_full_disk_failure(url, store)
        monkeypatch.setattr(pull_module.Downloader, "_fetch", real_fetch)
        usable(url, store)


# -- delete racing pull ---------------------------------------------------------------------------

@pytest.mark.parametrize("when", [0.0, 0.15, 0.4])
def test_delete_during_pull_of_the_same_model(tmp_path, hub, when):
    """A new revision is being pulled while the old one is deleted: whoever wins, the store is whole."""
    store, served = serve(tmp_path / "models")
    with served as url:
        paced(hub, False)
        usable(url, store)  # revision 1 is here
        hub.add_folder(REPO, write_tiny_model(tmp_path / "v2", rows=2200), sha="f" * 40)
        paced(hub, True)  # the pull of revision 2 is the one the delete races
        result: dict = {}

        def pull() -> None:
            r = httpx.post(url + "/api/pull", json={"model": "tiny", "stream": False}, timeout=60)
            result["pull"] = (r.status_code, r.json())

        worker = threading.Thread(target=pull)
        worker.start()
        time.sleep(when)
        r = HTTP.request("DELETE", url + "/api/delete", json={"model": "tiny"}, timeout=30)
        result["delete"] = r.status_code
        worker.join(60)
        assert result["pull"] == (200, {"status": "success"}), result
        assert result["delete"] in (200, 404)
        names = assert_consistent(store)
        assert names in ([], ["tiny:latest"])
        if names:
            assert store.get("tiny").manifest["revision"] == "f" * 40
        paced(hub, False)  # the race is over
        usable(url, store)
        assert store.get("tiny").manifest["revision"] == "f" * 40
