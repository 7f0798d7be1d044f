"""Pulls from a local Hub stand-in: Ollama's progress protocol, verification, errors, resume, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time

import pytest

from tests.models.conftest import REPO
from vllama.models import pull as pull_module
from vllama.models.pull import NOT_FOUND, PullError, pull
from vllama.models.store import ModelStore

PULLING = re.compile(r"^pulling ([0-9a-f]{12})$")
SAFETENSORS = "model.safetensors"


async def collect(store: ModelStore, name: str, **kwargs) -> list[dict]:
    return [event async for event in pull(store, name, **kwargs)]


def run(coro):
    return asyncio.run(coro)


def check_protocol(events: list[dict]) -> None:
    """Ollama's sequence: manifest, per-file lines, verify, write, (remove), success; fields typed."""
    assert events[0] == {"status": "pulling manifest"}
    statuses = [e["status"] for e in events]
    tail = ["verifying sha256 digest", "writing manifest", "success"]
    assert [s for s in statuses if not PULLING.match(s)][1:] in (tail, tail[:2] + ["removing unused layers"] + tail[2:])
    seen: dict[str, dict] = {}
    for event in events:
        m = PULLING.match(event["status"])
        if not m:
            assert set(event) == {"status"}
            continue
        assert set(event) <= {"status", "digest", "total", "completed"}
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", event["digest"]) and event["digest"][7:19] == m.group(1)
        assert type(event["total"]) is int and type(event.get("completed", 0)) is int
        assert 0 < event.get("completed", 0) <= event["total"] or "completed" not in event
        seen[event["digest"]] = event
    assert all(e["completed"] == e["total"] for e in seen.values())  # every file ends complete


def test_pull_progress_and_verified_blobs(store, hub):
    hub.delay, hub.chunk = 0.02, 32 * 1024  # about 0.6 s for the weights
    events = run(collect(store, "tiny"))
    check_protocol(events)
    weights = hub.repos[REPO].files[SAFETENSORS]
    digest = "sha256:" + hashlib.sha256(weights).hexdigest()
    lines = [e for e in events if e.get("digest") == digest]
    assert len(lines) >= 3 and [e.get("completed", 0) for e in lines] == sorted(e.get("completed", 0) for e in lines)
    model = store.get("tiny")
    assert model.name == "tiny:latest" and model.manifest["repo"] == REPO
    assert model.manifest["revision"] == hub.repos[REPO].sha
    assert [f["path"] for f in model.files] == ["config.json", "generation_config.json", SAFETENSORS,
                                                "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    for f in model.files:
        content = (model.path / f["path"]).read_bytes()
        assert f["digest"] == "sha256:" + hashlib.sha256(content).hexdigest()
        assert content == hub.repos[REPO].files[f["path"]]
    assert not hub.gets("pytorch_model.bin") and not hub.gets("model.onnx")
    assert list(store.partial_dir.iterdir()) == []


def test_repull_downloads_nothing(store, hub):
    run(collect(store, "tiny"))
    hub.requests.clear()
    events = run(collect(store, "tiny"))
    check_protocol(events)
    assert [r[1] for r in hub.requests] == [f"/api/models/{REPO}"]
    assert all(e["completed"] == e["total"] for e in events if "digest" in e)


@pytest.mark.parametrize("name", ["no-such-model", "tiny:nope", "hf.co/acme/Missing", "acme/Missing",
                                  f"hf.co/{REPO}:no-such-branch"])
def test_unknown_model(store, hub, name):
    async def go():
        events = []
        with pytest.raises(PullError) as err:
            async for event in pull(store, name):
                events.append(event)
        return events, str(err.value)

    events, message = run(go())
    assert events == [{"status": "pulling manifest"}] and message == NOT_FOUND
    assert store.list() == []


def test_gated_repo_mentions_hf_token(store, hub):
    with pytest.raises(PullError, match="HF_TOKEN") as err:
        run(collect(store, "hf.co/acme/Gated"))
    assert "acme/Gated" in str(err.value) and "401" in str(err.value)
    with pytest.raises(PullError, match="403"):
        run(collect(store, "hf.co/acme/Gated", token="hf_fake"))


def test_unreachable_hub(store, hub):
    with pytest.raises(PullError, match="^pull model manifest: "):
        run(collect(store, "tiny", endpoint="http://127.0.0.1:9"))


def test_repo_without_safetensors(store, hub, tmp_path):
    files = dict(hub.repos[REPO].files)
    del files[SAFETENSORS]
    hub.repos["acme/OnlyBin"] = type(hub.repos[REPO])(files)
    with pytest.raises(PullError, match="no .safetensors"):
        run(collect(store, "hf.co/acme/OnlyBin"))


def test_interrupted_pull_resumes(store, hub):
    hub.delay, hub.chunk = 0.02, 32 * 1024
    weights = hub.repos[REPO].files[SAFETENSORS]
    digest = hashlib.sha256(weights).hexdigest()

    async def pull_until_partway():
        async with asyncio.timeout(10):
            async for event in pull(store, "tiny"):
                if event.get("digest", "").endswith(digest) and event.get("completed", 0) > 100_000:
                    return  # the client goes away: the generator is closed mid-download

    run(pull_until_partway())
    partial = store.partial_dir / f"sha256-{digest}.partial"
    # The worker thread notices at its next chunk, then lets go of the partial file (asyncio.run
    # already waited for its executor's threads: this only makes sure), instead of sleeping 0.3 s.
    lock = pull_module._file_lock(partial)
    assert lock.acquire(timeout=10), "the download thread still holds the partial file"
    lock.release()
    assert 0 < partial.stat().st_size < len(weights)
    assert store.list() == [] and not store.has_blob("sha256:" + digest)

    hub.delay = 0
    events = run(collect(store, "tiny"))
    check_protocol(events)
    ranges = hub.gets(f"/cdn/{digest}")
    assert ranges[0] is None and re.fullmatch(r"bytes=(\d+)-", ranges[-1]) and int(ranges[-1][6:-1]) > 100_000
    assert (store.get("tiny").path / SAFETENSORS).read_bytes() == weights


def test_dropped_connection_is_resumed_within_a_pull(store, hub):
    hub.drop_after[SAFETENSORS] = 300_000
    events = run(collect(store, "tiny"))
    check_protocol(events)
    digest = hashlib.sha256(hub.repos[REPO].files[SAFETENSORS]).hexdigest()
    assert hub.gets(f"/cdn/{digest}") == [None, "bytes=300000-"]
    assert (store.get("tiny").path / SAFETENSORS).read_bytes() == hub.repos[REPO].files[SAFETENSORS]


def test_corrupt_partial_fails_verification_then_refetches(store, hub):
    weights = hub.repos[REPO].files[SAFETENSORS]
    digest = hashlib.sha256(weights).hexdigest()
    store.partial_dir.mkdir(parents=True)
    (store.partial_dir / f"sha256-{digest}.partial").write_bytes(b"\xff" * len(weights))  # "complete" but wrong
    with pytest.raises(PullError, match=f"^digest mismatch, file must be downloaded again: want sha256:{digest}"):
        run(collect(store, "tiny"))
    assert store.list() == [] and not store.has_blob("sha256:" + digest)
    run(collect(store, "tiny"))
    assert (store.get("tiny").path / SAFETENSORS).read_bytes() == weights


def test_two_pulls_of_one_model_at_once(store, hub):
    hub.delay, hub.chunk = 0.01, 64 * 1024

    async def both():
        return await asyncio.gather(collect(store, "tiny"), collect(store, "TINY:latest"))

    for events in run(both()):
        check_protocol(events)
    assert [m.name for m in store.list()] == ["tiny:latest"]
    digest = hashlib.sha256(hub.repos[REPO].files[SAFETENSORS]).hexdigest()
    assert hub.gets(f"/cdn/{digest}") == [None]  # fetched once
    assert list(store.partial_dir.iterdir()) == []


def test_two_names_for_one_repo_at_once(store, hub):
    hub.delay, hub.chunk = 0.01, 64 * 1024

    async def both():
        return await asyncio.gather(collect(store, "tiny"), collect(store, f"hf.co/{REPO}"))

    for events in run(both()):
        check_protocol(events)
    a, b = store.get("tiny"), store.get(f"hf.co/{REPO}")
    assert a.files == b.files and len(list(store.blobs_dir.iterdir())) == len(a.files)


def test_new_revision_removes_unused_layers(store, hub, tmp_path):
    run(collect(store, "tiny"))
    old = store.get("tiny")
    repo = hub.repos[REPO]
    repo.files[SAFETENSORS] = repo.files[SAFETENSORS][:-8] + b"        "  # same size, new content
    repo.sha = "f" * 40
    events = run(collect(store, "tiny"))
    check_protocol(events)
    assert {"status": "removing unused layers"} in events
    new = store.get("tiny")
    assert new.manifest["revision"] == "f" * 40 and new.digest != old.digest
    old_weights = next(f for f in old.files if f["path"] == SAFETENSORS)["digest"]
    assert not store.has_blob(old_weights) and not old.path.exists()


def test_pull_does_not_block_the_event_loop(store, hub):
    hub.delay, hub.chunk = 0.02, 32 * 1024

    async def go():
        gaps, last = [], time.monotonic()

        async def tick():
            nonlocal last
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await collect(store, "tiny")
        ticker.cancel()
        return max(gaps[5:])  # after imports warmed up

    assert run(go()) < 0.25


def test_files_in_the_hugging_face_cache_are_not_downloaded(store, hub, tmp_path, monkeypatch):
    repo = hub.repos[REPO]
    snapshot = tmp_path / "hf-cache" / "models--acme--Tiny-Instruct" / "snapshots" / repo.sha
    snapshot.mkdir(parents=True)
    for path, data in repo.files.items():
        (snapshot / path).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / path).write_bytes(data)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    check_protocol(run(collect(store, "tiny")))
    assert [r[1] for r in hub.requests] == [f"/api/models/{REPO}"]
    assert (store.get("tiny").path / SAFETENSORS).read_bytes() == repo.files[SAFETENSORS]
