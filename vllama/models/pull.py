"""`pull`: fetch a model from the Hugging Face Hub into the store, reporting progress as Ollama does.

The Hub's file listing (huggingface_hub's `model_info(files_metadata=True)`) gives every large
file's sha256 up front; small files are plain git blobs, fetched while "pulling manifest" and
checked against their git blob id. Downloads run in worker threads into `<store>/partial/`,
resume from where an earlier pull stopped (HTTP Range), and are verified before they become
blobs, so an interrupted pull leaves the store as it was and the next one carries on. Files
already in the local Hugging Face cache ($HF_HUB_CACHE) at the same commit are copied from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .. import __version__
from .catalog import resolve
from .gguf import GgufHeader, read_header
from .hub_gguf import GgufChoice, choose, is_gguf
from .info import human_number
from .names import ModelName
from .net_errors import go_request_error
from .ollama_store import CONFIG_MEDIA_TYPE, LAYER_PREFIX, MANIFEST_MEDIA_TYPE
from .store import DigestMismatch, ModelStore, is_model_file

NOT_FOUND = "pull model manifest: file does not exist"
POLL_SECONDS = 0.1
_RETRIES = 5
_CHUNK = 1 << 20


class PullError(Exception):
    """A pull failed; the message is what the client sees in the `error` line."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None  # hex, known for LFS files
    git_oid: str | None  # the git blob id, for small files


class _Cancelled(Exception):
    """The pull that started a download has gone."""


# -- talking to the Hub -----------------------------------------------------------------------

def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _headers(token: str | None) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(token=token, library_name="vllama", library_version=__version__)


def _auth_message(repo: str, status: int | str) -> str:
    return (f"pull model manifest: Hugging Face refused access to {repo} ({status}): it is gated or private. "
            f"Accept its terms on huggingface.co, then set HF_TOKEN to a token with read access")


def select_files(paths: list[str]) -> list[str]:
    """The files vLLM needs; a repo that also ships Mistral's consolidated weights keeps only one copy."""
    wanted = [p for p in paths if is_model_file(p)]
    if any(p.endswith(".safetensors") and not p.startswith("consolidated") for p in wanted):
        wanted = [p for p in wanted if not (p.startswith("consolidated") and p.endswith(".safetensors"))]
    return wanted


def repo_info(repo: str, revision: str | None, endpoint: str, token: str | None) -> Any:
    """The Hub's model_info with file sizes and LFS sha256s, or PullError with Ollama's wording."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi(endpoint=endpoint, token=token, library_name="vllama").model_info(
            repo, revision=revision, files_metadata=True)
    except GatedRepoError as err:
        raise PullError(_auth_message(repo, err.response.status_code)) from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise PullError(NOT_FOUND) from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "error"
        if status in (401, 403):
            raise PullError(_auth_message(repo, status)) from None
        raise PullError(f"pull model manifest: {status}: {err}") from None
    except Exception as err:  # offline mode, DNS, refused connections: say what happened, as Go says it
        url = f"{endpoint}/api/models/{repo}" + (f"/revision/{quote(revision, safe='')}" if revision else "")
        raise PullError(f"pull model manifest: {go_request_error('GET', url, err)}") from None
    return info


def remote_files(info: Any, paths: list[str]) -> list[RemoteFile]:
    siblings = {s.rfilename: s for s in info.siblings or []}
    files = []
    for path in paths:
        s = siblings[path]
        lfs = s.lfs
        files.append(RemoteFile(path, lfs.size if lfs else s.size, lfs.sha256.lower() if lfs else None,
                                None if lfs else s.blob_id))
    return files


def fetch_listing(repo: str, revision: str | None, endpoint: str, token: str | None) -> tuple[str, list[RemoteFile]]:
    """(commit sha, the files to download), or PullError with Ollama's wording."""
    return listing_of(repo, repo_info(repo, revision, endpoint, token), revision)


def _paths(info: Any) -> list[str]:
    return [s.rfilename for s in info.siblings or []]


def listing_of(repo: str, info: Any, revision: str | None) -> tuple[str, list[RemoteFile]]:
    """The safetensors checkpoint in a repo listing: (commit sha, the files vLLM needs)."""
    files = remote_files(info, select_files(_paths(info)))
    if not any(f.path == "config.json" for f in files):
        raise PullError(f"pull model manifest: {repo} has no config.json; vllama runs Hugging Face "
                        "safetensors checkpoints (GGUF-only repos are not supported)")
    if not any(f.path.endswith(".safetensors") for f in files):
        raise PullError(f"pull model manifest: {repo} has no .safetensors weights")
    return info.sha or (revision or "main"), files


@dataclass(frozen=True)
class HubPlan:
    """What a Hub pull fetches: a safetensors checkpoint, or (gguf set) the GGUF file(s) a tag picked."""

    commit: str
    files: list[RemoteFile]
    gguf: GgufChoice | None = None


def plan_hub_pull(repo: str, revision: str | None, tag: str, endpoint: str, token: str | None) -> HubPlan:
    """For `hf.co/ORG/REPO:TAG`: a safetensors repo takes the tag as a revision (as before); a
    repo of GGUF files takes it as a quantization (Ollama's meaning)."""
    try:
        info = repo_info(repo, revision, endpoint, token)
    except PullError as err:
        if revision is None or str(err) != NOT_FOUND:
            raise
        info = None  # no such revision: perhaps the tag names a quantization
    if info is not None and "config.json" in _paths(info):
        return HubPlan(*listing_of(repo, info, revision))
    main = info if revision is None and info is not None else repo_info(repo, None, endpoint, token)
    if not any(is_gguf(p) for p in _paths(main)):
        if info is None:
            raise PullError(NOT_FOUND)
        return HubPlan(*listing_of(repo, info, revision))  # its own words: no config.json
    try:
        choice = choose(_paths(main), tag)
    except ValueError as err:
        raise PullError(str(err)) from None
    files = remote_files(main, list(choice.paths))
    if any(f.sha256 is None for f in files):
        raise PullError(f"pull model manifest: {repo}: {choice.paths[0]} is not stored with Git LFS")
    return HubPlan(main.sha or "main", files, choice)


_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.RLock:
    """One writer per partial file, even when an abandoned pull's thread is still finishing."""
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(str(path), threading.RLock())


class _Incomplete(Exception):
    pass


@dataclass
class Downloader:
    """Resumable downloads for one pull: a shared HTTP client, the Hub headers, a stop switch."""

    headers: dict[str, str]
    service: str = "Hugging Face"  # who refused, in a 401/403 message
    cancel: threading.Event = field(default_factory=threading.Event)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(
        follow_redirects=True, timeout=httpx.Timeout(30.0, read=60.0)))

    def close(self) -> None:
        self.cancel.set()  # a worker still running stops at its next chunk
        self.client.close()

    def download(self, url: str, dest: Path, size: int | None, done: Callable[[], bool] = lambda: False,
                 cached: Path | None = None) -> None:
        """Fetch `url` into `dest`, continuing a partial file with a Range request; retry dropped connections.

        `done` says the content already arrived by another way (a concurrent pull published it);
        `cached` is a copy in the local Hugging Face cache, used instead of the network."""
        with _file_lock(dest):
            failures = 0
            if cached is not None and size in (None, cached.stat().st_size) and not done():
                self._copy(cached, dest)
            while True:
                if self.cancel.is_set():
                    raise _Cancelled
                if done():
                    return
                have = dest.stat().st_size if dest.exists() else 0
                if size is not None and have == size:
                    return
                if size is not None and have > size:
                    dest.unlink()
                    have = 0
                try:
                    self._fetch(url, dest, have)
                    got = dest.stat().st_size
                    if size is None or got == size:
                        return
                    raise _Incomplete(f"expected {size} bytes, got {got}")
                except (httpx.TransportError, _Incomplete) as err:
                    now = dest.stat().st_size if dest.exists() else 0
                    progressed = have < now <= (size if size is not None else now)
                    failures = 0 if progressed and not isinstance(err, _Incomplete) else failures + 1
                    if failures >= _RETRIES:
                        raise PullError(f"download failed: {err}") from None
                    time.sleep(min(0.2 * 2**failures, 5))

    def _copy(self, source: Path, dest: Path) -> None:
        with open(source, "rb") as src, open(dest, "wb", buffering=0) as out:
            while chunk := src.read(_CHUNK):
                if self.cancel.is_set():
                    raise _Cancelled
                out.write(chunk)

    def _fetch(self, url: str, dest: Path, have: int) -> None:
        headers = {**self.headers, "Range": f"bytes={have}-"} if have else self.headers
        with self.client.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and have:  # the partial file is stale: start over
                dest.unlink(missing_ok=True)
                raise _Incomplete("range not satisfiable")
            if response.status_code in (401, 403):
                hint = "; set HF_TOKEN to a token with read access" if self.service == "Hugging Face" else ""
                raise PullError(f"download failed: {self.service} refused access ({response.status_code}) "
                                f"to {url}{hint}")
            if response.status_code == 404:
                raise PullError(NOT_FOUND)
            if response.status_code >= 400:
                raise PullError(f"download failed: HTTP {response.status_code} for {url}")
            append = have > 0 and response.status_code == 206
            with open(dest, "ab" if append else "wb", buffering=0) as out:
                for chunk in response.iter_bytes():  # as it arrives, so progress can be watched
                    if self.cancel.is_set():
                        raise _Cancelled
                    out.write(chunk)


def _git_oid(path: Path) -> str:
    h = hashlib.sha1()
    h.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _publish(store: ModelStore, partial: Path, digest: str | None, git_oid: str | None) -> str:
    """Verify a downloaded file and move it into the blobs; return its digest."""
    with _file_lock(partial):
        if digest and store.has_blob(digest):
            partial.unlink(missing_ok=True)
            return digest
        if git_oid and _git_oid(partial) != git_oid:
            partial.unlink(missing_ok=True)
            raise PullError(f"download of {partial.name} is corrupt (git blob id mismatch); pull again")
        try:
            return store.add_blob(partial, digest, move=True)
        except DigestMismatch as err:
            partial.unlink(missing_ok=True)
            raise PullError(f"digest mismatch, file must be downloaded again: "
                            f"want {err.expected}, got {err.got}") from None


def hf_cached(repo: str, path: str, commit: str) -> Path | None:
    """This file at this commit in the local Hugging Face cache ($HF_HUB_CACHE), if it is there."""
    from huggingface_hub import constants, try_to_load_from_cache

    cache_dir = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    found = try_to_load_from_cache(repo, path, cache_dir=cache_dir, revision=commit)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def _fetch_small_file(store: ModelStore, fetcher: Downloader, url: str, f: RemoteFile, cached: Path | None) -> str:
    """Download, check against the git blob id, and store a small file in one step; return its digest."""
    partial = store.partial_dir / f"git-{f.git_oid or hashlib.sha256(url.encode()).hexdigest()}.partial"
    with _file_lock(partial):  # a concurrent pull of the same file waits, then fetches its own copy
        fetcher.download(url, partial, f.size, cached=cached)
        return _publish(store, partial, None, f.git_oid)


# -- the pull ---------------------------------------------------------------------------------

def _progress(status: str, digest: str | None = None, total: int | None = None,
              completed: int | None = None) -> dict[str, Any]:
    """A ProgressResponse; Go leaves zero fields out."""
    out: dict[str, Any] = {"status": status}
    if digest:
        out["digest"] = digest
    if total:
        out["total"] = total
    if completed:
        out["completed"] = completed
    return out


_MODEL_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}


def _model_lock(store: ModelStore, name: ModelName) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), f"{store.root}:{name.key}")
    return _MODEL_LOCKS.setdefault(key, asyncio.Lock())


async def _watch(run: asyncio.Future, path: Path,
                 report: Callable[[int], dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Report a growing file every POLL_SECONDS until the worker finishes."""
    last = -1
    try:
        while not run.done():
            await asyncio.wait({run}, timeout=POLL_SECONDS)
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # not begun, or just moved into the blobs as the worker ends
                size = 0 if last < 0 else last
            if size != last and not run.done():
                last = size
                yield report(size)
    finally:
        if not run.done():  # abandoned: the worker ends as _Cancelled, which nobody needs to see
            run.add_done_callback(lambda f: f.cancelled() or f.exception())
    run.result()


async def pull(store: ModelStore, name: str | ModelName, *, endpoint: str | None = None,
               token: str | None = None, insecure: bool = False) -> AsyncIterator[dict[str, Any]]:
    """Pull `name` into `store`, yielding Ollama progress objects; failures raise PullError.

    Sources by name: the catalogue's tags and `hf.co/...` or `Org/Repo` names come from the Hugging
    Face Hub, every other name from Ollama's registry (or the registry its host names; `insecure`:
    over plain HTTP). `endpoint` and `token` default to HF_ENDPOINT and HF_TOKEN (or a saved login)."""
    parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
    yield _progress("pulling manifest")
    source = resolve(parsed)
    if source is None:  # not the catalogue's, not the Hub's: Ollama's registry (or the name's own host)
        from .registry import pull_from_registry

        async with _model_lock(store, parsed):
            async for event in pull_from_registry(store, parsed, insecure=insecure):
                yield event
        return
    repo, revision = source
    hub = _endpoint(endpoint)
    async with _model_lock(store, parsed):
        if parsed.is_huggingface:
            plan = await asyncio.to_thread(plan_hub_pull, repo, revision, parsed.tag, hub, token)
        else:
            plan = HubPlan(*await asyncio.to_thread(fetch_listing, repo, revision, hub, token))
        async for event in _pull_locked(store, parsed, repo, plan, hub, token):
            yield event


async def _pull_locked(store: ModelStore, name: ModelName, repo: str, plan: HubPlan, hub: str,
                       token: str | None) -> AsyncIterator[dict[str, Any]]:
    from huggingface_hub import hf_hub_url

    commit, files = plan.commit, plan.files
    store.partial_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous_files(store, name)

    def url(f: RemoteFile) -> str:
        return hf_hub_url(repo, f.path, revision=commit, endpoint=hub)

    with contextlib.ExitStack() as stack:
        fetcher = Downloader(_headers(token))
        stack.callback(fetcher.close)  # also when the client goes away mid-pull
        # Small files have no published sha256: fetch and hash them now, as part of the "manifest".
        digests: dict[str, str] = {}
        for f in files:
            if f.sha256:
                digest = f"sha256:{f.sha256}"
            elif (commit, f.path) in previous and store.has_blob(previous[(commit, f.path)]):
                digest = previous[(commit, f.path)]
            else:
                cached = await asyncio.to_thread(hf_cached, repo, f.path, commit)
                digest = await asyncio.to_thread(_fetch_small_file, store, fetcher, url(f), f, cached)
            stack.enter_context(store.pinned([digest]))  # no concurrent delete may collect it now
            digests[f.path] = digest

        fetched: list[tuple[str, Path]] = []
        for f in files:
            digest = digests[f.path]
            status, total = f"pulling {digest[7:19]}", f.size or 0
            if store.has_blob(digest):
                yield _progress(status, digest, total, total)
                continue
            partial = store.partial_dir / f"sha256-{digest[7:]}.partial"
            present = functools.partial(store.has_blob, digest)
            cached = await asyncio.to_thread(hf_cached, repo, f.path, commit)
            run = asyncio.ensure_future(asyncio.to_thread(fetcher.download, url(f), partial, f.size, present, cached))
            async for event in _watch(run, partial, functools.partial(_progress, status, digest, total)):
                yield event
            yield _progress(status, digest, total, total)
            fetched.append((digest, partial))

        yield _progress("verifying sha256 digest")
        for digest, partial in fetched:
            await asyncio.to_thread(_publish, store, partial, digest, None)

        yield _progress("writing manifest")
        if plan.gguf is not None:
            await asyncio.to_thread(_write_gguf_manifest, store, name, [digests[f.path] for f in files], plan.gguf)
        else:
            entries = [{"path": f.path, "digest": digests[f.path]} for f in files]
            await asyncio.to_thread(store.write_manifest, name, entries, repo=repo, revision=commit)

    unused = set(previous.values()) - set(digests.values())
    if unused:
        yield _progress("removing unused layers")
    await asyncio.to_thread(store.prune, unused)
    yield _progress("success")


def _write_gguf_manifest(store: ModelStore, name: ModelName, digests: list[str], choice: GgufChoice) -> None:
    """An Ollama-format manifest for GGUF file(s) pulled from the Hub: model layer(s) and a config
    blob like the one Ollama writes (format, family, parameter size, quantization)."""
    import io

    header: GgufHeader = read_header(store.blob_path(digests[0]))
    family = header.architecture
    config = {"model_format": "gguf", "model_family": family, "model_families": [family],
              "model_type": human_number(header.parameter_count) if len(digests) == 1 else "",
              "file_type": header.file_type or choice.quant.upper()}
    config_raw = json.dumps(config, separators=(",", ":")).encode()
    config_digest = store.add_blob(io.BytesIO(config_raw))
    with store.pinned([config_digest]):
        store.write_ollama_manifest(name, _manifest_bytes(store, config_digest, len(config_raw), digests))


def _manifest_bytes(store: ModelStore, config_digest: str, config_size: int, digests: list[str]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER_PREFIX + "model", "digest": d, "size": store.blob_path(d).stat().st_size}
                   for d in digests],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def _previous_files(store: ModelStore, name: ModelName) -> dict[tuple[str, str], str]:
    """(revision, path) -> digest from the manifest this pull replaces, to skip refetching small files."""
    try:
        manifest = store.get(name).manifest
    except (LookupError, OSError, ValueError):
        return {}
    return {(manifest.get("revision") or "", f["path"]): f["digest"] for f in manifest.get("files", [])}
