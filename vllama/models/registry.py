"""`pull` from Ollama's own registry: the OCI-style API `ollama pull` speaks, with Ollama's progress.

    GET /v2/<namespace>/<model>/manifests/<tag>     Accept: application/vnd.docker.distribution.manifest.v2+json
    GET /v2/<namespace>/<model>/blobs/<digest>      each layer, then the config (a redirect to a CDN is followed)

Layers download into `<store>/partial/`, resume with HTTP Range after a cut, and are verified
against their digests before they become blobs (pull.py's machinery, shared with Hub pulls). The
manifest is stored byte for byte, so the model's digest is the one Ollama reports for it, and
the model serves like one in the user's Ollama store (its GGUF dequantised on first load).

`VLLAMA_OLLAMA_REGISTRY` (a base URL such as `http://127.0.0.1:8000`) replaces
`https://registry.ollama.ai` for names on Ollama's default host: a mirror, or a test's stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from .. import __version__
from .names import DEFAULT_HOST, ModelName
from .net_errors import go_request_error
from .ollama_store import MANIFEST_MEDIA_TYPE, Layer, is_ollama_manifest, parse_layer
from .pull import NOT_FOUND, Downloader, PullError, _progress, _publish, _watch
from .store import ORIGIN_VLLAMA, ModelStore

log = logging.getLogger("vllama.models")

REGISTRY_ENV = "VLLAMA_OLLAMA_REGISTRY"
ACCEPT = MANIFEST_MEDIA_TYPE
_MAX_MANIFEST = 4 << 20


def registry_url(name: ModelName, insecure: bool = False) -> str:
    """The registry serving this name: the override for Ollama's host, else https://<host>."""
    override = os.environ.get(REGISTRY_ENV, "").strip().rstrip("/")
    if override and name.host.lower() == DEFAULT_HOST:
        return override
    return f"{'http' if insecure else 'https'}://{name.host}"


def _headers() -> dict[str, str]:
    return {"User-Agent": f"vllama/{__version__}"}


@dataclass(frozen=True)
class RemoteManifest:
    raw: bytes  # as served: its sha256 is the model's digest
    layers: tuple[Layer, ...]  # in pull order: the layers, then the config


def fetch_manifest(base: str, name: ModelName) -> RemoteManifest:
    """The manifest, or PullError in Ollama's words (`pull model manifest: file does not exist`)."""
    url = f"{base}/v2/{name.namespace}/{name.model}/manifests/{name.tag}"
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0)) as client:
            response = client.get(url, headers={**_headers(), "Accept": ACCEPT})
    except (httpx.ConnectError, httpx.InvalidURL, UnicodeError) as err:
        # Offline, or no such host (a host no URL can hold, like `h..`, fails in IDNA encoding): the
        # name is known neither to the catalogue nor to a registry we can reach. Ollama's clients
        # recognise this message (and suggest what to do).
        log.warning("registry %s unreachable for %s: %s", base, name, err)
        raise PullError(NOT_FOUND) from None
    except httpx.HTTPError as err:
        raise PullError(f"pull model manifest: {go_request_error('GET', url, err)}") from None
    if response.status_code == 404:
        raise PullError(NOT_FOUND)
    if response.status_code >= 400:
        raise PullError(f"pull model manifest: {response.status_code}: {response.text.strip()}")
    raw = response.content
    data: Any
    try:
        data = json.loads(raw) if len(raw) <= _MAX_MANIFEST else None
    except ValueError:
        data = None
    if not is_ollama_manifest(data) or not isinstance(data.get("config"), dict):
        raise PullError(f"pull model manifest: {url} did not answer an Ollama manifest")
    try:
        layers = tuple(parse_layer(entry) for entry in [*data["layers"], data["config"]])
    except ValueError as err:
        raise PullError(f"pull model manifest: {err}") from None
    if not any(layer.kind == "model" for layer in layers):
        raise PullError("pull model manifest: the model has no model layer (vllama serves GGUF models)")
    return RemoteManifest(raw, layers)


async def pull_from_registry(store: ModelStore, name: ModelName, *, insecure: bool = False
                             ) -> AsyncIterator[dict[str, object]]:
    """Pull `name` into `store`, yielding Ollama's progress objects after `pulling manifest`
    (the caller sends that one); failures raise PullError."""
    base = registry_url(name, insecure)
    remote = await asyncio.to_thread(fetch_manifest, base, name)
    store.partial_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous_blobs(store, name)
    with contextlib.ExitStack() as stack:
        fetcher = Downloader(_headers(), service="the registry")
        stack.callback(fetcher.close)
        stack.enter_context(store.pinned(layer.digest for layer in remote.layers))
        fetched = []
        seen = set()
        for layer in remote.layers:
            if layer.digest in seen:  # a manifest may name one blob twice
                continue
            seen.add(layer.digest)
            status = f"pulling {layer.hex[:12]}"
            if store.has_blob(layer.digest):
                yield _progress(status, layer.digest, layer.size, layer.size)
                continue
            partial = store.partial_dir / f"sha256-{layer.hex}.partial"
            url = f"{base}/v2/{name.namespace}/{name.model}/blobs/{layer.digest}"
            present = functools.partial(store.has_blob, layer.digest)
            run = asyncio.ensure_future(asyncio.to_thread(fetcher.download, url, partial, layer.size, present))
            async for event in _watch(run, partial, functools.partial(_progress, status, layer.digest, layer.size)):
                yield event
            yield _progress(status, layer.digest, layer.size, layer.size)
            fetched.append((layer.digest, partial))

        yield _progress("verifying sha256 digest")
        for digest, partial in fetched:
            await asyncio.to_thread(_publish, store, partial, digest, None)

        yield _progress("writing manifest")
        await asyncio.to_thread(store.write_ollama_manifest, name, remote.raw)

    unused = previous - {layer.digest for layer in remote.layers}
    if unused:
        yield _progress("removing unused layers")
    await asyncio.to_thread(store.prune, unused)
    yield _progress("success")


def _previous_blobs(store: ModelStore, name: ModelName) -> set[str]:
    """The blobs of the manifest in vllama's store this pull replaces."""
    try:
        model = store.get(name)
    except (LookupError, OSError, ValueError):
        return set()
    if model.origin != ORIGIN_VLLAMA:
        return set()
    if model.ollama is None:
        return {f["digest"] for f in model.files}
    return {layer.digest for layer in (*model.ollama.layers, model.ollama.config_layer)}
