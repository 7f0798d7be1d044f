"""Model management routes: pull, tags, show, delete, copy, create and blobs, with Ollama's semantics."""

from __future__ import annotations

import asyncio
import functools
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.options import OptionError, parse_options
from ...models import info
from ...models.names import InvalidName, ModelName
from ...models.pull import PullError, pull
from ...models.store import DigestMismatch, ModelNotFound, ModelStore, ReadOnlyModel, parse_digest, safe_relpath
from ..disconnect import until_disconnect
from ...serving.errors import BadRequest, Failed, NotFound, ServingError
from ..errors import read_json, status_and_message
from ..gojson import dumps, field, go_quote, json_kind
from ..http import error_response, json_response, serving
from . import show
from .render import ndjson_response

Events = AsyncIterator[dict[str, Any]]
_MODELFILE_FIELDS = ("template", "system", "license", "parameters", "messages")


def _store(request: Request) -> ModelStore:
    return serving(request).store


def _requested_model(body: dict[str, Any], struct: str) -> str:
    """`model`, else the deprecated `name` (the Go CLI sends `"model": ""` next to `"name"`)."""
    return (field(body, "model", str, "", struct=struct) or field(body, "name", str, "", struct=struct)).strip()


def _parse(text: str, message: str = "invalid model name") -> ModelName:
    try:
        return ModelName.parse(text)
    except InvalidName:
        raise BadRequest(message) from None


NAME_MAX = 255  # bytes in one file name: each part of a model name becomes a directory or file


def _writable(name: ModelName, message: str = "invalid model name") -> ModelName:
    """A name the store can write: Ollama's grammar allows a 350-character host, Linux 255 bytes."""
    if any(len(part.encode()) > NAME_MAX for part in name.parts):
        raise BadRequest(message)
    return name


async def _in_band(events: Events) -> Events:
    """Turn a failed pull or create into an `{"error": ...}` line (or a 500 before any line)."""
    try:
        async for event in events:
            yield event
    except (PullError, DigestMismatch, FileNotFoundError, ValueError, ImportError) as err:
        raise Failed(str(err)) from None


async def _answer(request: Request, events: Events, stream: bool) -> Response:
    """NDJSON progress, or with `stream: false` only the last object (an error as HTTP 500)."""
    if stream:
        return await ndjson_response(_in_band(events))

    async def last() -> Response:
        final: dict[str, Any] = {}
        try:
            async for event in _in_band(events):
                final = event
        except ServingError as err:  # Ollama answers this one with a bare `application/json`
            status, message = status_and_message(err)
            return Response(dumps({"error": message}), status, media_type="application/json")
        return json_response(final)

    return await until_disconnect(request, last())


# -- pull, tags, show -------------------------------------------------------------------------

async def pull_model(request: Request) -> Response:
    body = await read_json(request)
    name = _writable(_parse(_requested_model(body, "PullRequest")))
    stream = field(body, "stream", bool, True, struct="PullRequest")
    return await _answer(request, pull(_store(request), name), stream)


def _tags_entry(model: Any) -> dict[str, Any]:
    """An /api/tags entry with what Ollama added to it since 0.24: `details.context_length` and
    `details.embedding_length` (left out when unknown) and `capabilities`."""
    entry = show.tags_entry(model)
    text = info.text_config(model.config)

    def first(*keys: str) -> int:
        return next((v for k in keys if isinstance(v := text.get(k), int) and not isinstance(v, bool)), 0)

    lengths = {"context_length": first("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"),
               "embedding_length": first("hidden_size", "n_embd", "d_model")}
    entry["details"] = {**entry["details"], **{k: v for k, v in lengths.items() if v}}
    if model.capabilities:
        entry["capabilities"] = list(model.capabilities)
    return entry


def _tags(models: list[Any]) -> list[dict[str, Any]]:
    return [_tags_entry(m) for m in models]  # capabilities read files: in the same thread as list


async def list_models(request: Request) -> Response:
    store = _store(request)
    entries = await asyncio.to_thread(lambda: _tags(store.list()))
    return json_response({"models": entries})


async def show_model(request: Request) -> Response:
    body = await read_json(request)
    text = _requested_model(body, "ShowRequest")
    if not text:
        raise BadRequest("model is required")
    name = _parse(text)
    try:
        model = await asyncio.to_thread(_store(request).get, name)
    except ModelNotFound:
        raise NotFound(f"model '{text}' not found") from None
    return json_response(await asyncio.to_thread(show.show_response, model))


# -- delete, copy -----------------------------------------------------------------------------

async def delete_model(request: Request) -> Response:
    body = await read_json(request)
    text = _requested_model(body, "DeleteRequest")
    if not text:
        raise BadRequest("model is required")
    name = _parse(text, f"name {go_quote(text)} is invalid")
    store = _store(request)
    try:
        model = await asyncio.to_thread(store.get, name)
    except ModelNotFound:
        raise NotFound(f"model '{text}' not found") from None
    await serving(request).scheduler.unload(model.name.lower())  # the scheduler's key for a loaded model
    try:
        await asyncio.to_thread(store.delete, name)
    except ModelNotFound:
        raise NotFound(f"model '{text}' not found") from None
    except ReadOnlyModel as err:  # in the user's Ollama store: a 500, as Ollama answers a failed remove
        raise Failed(str(err)) from None
    return Response(status_code=200)


async def copy_model(request: Request) -> Response:
    body = await read_json(request)
    source = field(body, "source", str, "", struct="CopyRequest").strip()
    destination = field(body, "destination", str, "", struct="CopyRequest").strip()
    src = _parse(source, f"source {go_quote(source)} is invalid")
    dst = _parse(destination, f"destination {go_quote(destination)} is invalid")
    _writable(dst, f"destination {go_quote(destination)} is invalid")
    try:
        await asyncio.to_thread(_store(request).copy, src, dst)
    except ModelNotFound:
        raise NotFound(f"model {go_quote(source)} not found") from None
    return Response(status_code=200)


# -- create -----------------------------------------------------------------------------------

def _create_field_error(key: str, value: Any, go_type: str) -> BadRequest:
    return BadRequest(f"json: cannot unmarshal {json_kind(value)} into Go struct field CreateRequest.{key} "
                         f"of type {go_type}")


def _modelfile_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The Modelfile-level settings `create` may carry, kept in the manifest for show and the engine.

    They are type-checked here: a manifest holding a wrong type would break every later show and
    generate of the model, long after the create that stored it."""
    extra: dict[str, Any] = {}
    for key in _MODELFILE_FIELDS:
        value = body.get(key)
        if value in (None, "", [], {}):
            continue
        if key in ("template", "system") and not isinstance(value, str):
            raise _create_field_error(key, value, "string")
        if key == "license" and isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise _create_field_error(key, value, "string")
            value = "\n".join(value)
        if key == "license" and not isinstance(value, str):
            raise _create_field_error(key, value, "string")
        if key == "parameters":
            if not isinstance(value, dict):
                raise BadRequest("parameters must be an object")
            try:
                parse_options(value)
            except OptionError as err:
                raise BadRequest(str(err)) from None
        if key == "messages":
            if not isinstance(value, list):
                raise BadRequest("messages must be an array")
            for message in value:
                if not isinstance(message, dict) or not all(
                        isinstance(message.get(k), (str, type(None))) for k in ("role", "content")):
                    raise BadRequest("json: cannot unmarshal into Go struct field CreateRequest.messages "
                                        "of type api.Message")
        extra[key] = value
    return extra


def _checked_files(store: ModelStore, files: dict[str, Any]) -> dict[str, str]:
    """Paths that can all be laid out in one folder (each a relative path the filesystem takes,
    none both a file and another's directory) and digests of blobs already uploaded."""
    checked = {}
    for path, digest in files.items():
        try:
            path = safe_relpath(path)
        except ValueError:
            raise BadRequest("file path must be relative") from None
        if len(path.encode()) > 1024 or any(len(part.encode()) > NAME_MAX for part in path.split("/")):
            raise BadRequest(f"file path {go_quote(path[:80])} is too long")
        try:
            parse_digest(digest)
        except ValueError:
            raise BadRequest("invalid digest format") from None
        if not store.has_blob(digest):
            raise BadRequest(f"blob {go_quote(digest)} not found; upload it with POST /api/blobs/{digest}")
        checked[path] = digest
    folders = {"/".join(parts[:i]) for parts in (p.split("/") for p in checked) for i in range(1, len(parts))}
    for path in checked:
        if path in folders:
            raise BadRequest(f"file path {go_quote(path)} is both a file and a folder")
    return checked


async def create_model(request: Request) -> Response:
    body = await read_json(request)
    text = _requested_model(body, "CreateRequest")
    if not text:
        raise BadRequest("model is required")
    name = _writable(_parse(text))
    stream = field(body, "stream", bool, True, struct="CreateRequest")
    source = field(body, "from", str, "", struct="CreateRequest").strip()
    files = field(body, "files", dict, {}, "map[string]string", "CreateRequest")
    if field(body, "quantize", str, "", struct="CreateRequest"):
        raise BadRequest("quantize is not supported: vllama serves the weights as they are")
    if not source and not files:
        raise BadRequest("neither 'from' or 'files' was specified")
    store = _store(request)
    extra = _modelfile_fields(body)
    if files:
        events = _create_from_files(store, name, _checked_files(store, files), extra)
    else:
        events = _create_from_model(store, name, _parse(source), extra)
    return await _answer(request, events, stream)


async def _create_from_model(store: ModelStore, name: ModelName, source: ModelName, extra: dict[str, Any]) -> Events:
    try:
        base = await asyncio.to_thread(store.get, source)
    except ModelNotFound:
        async for event in pull(store, source):  # as Ollama does: fetch a base it does not have
            if event["status"] != "success":
                yield event
        base = await asyncio.to_thread(store.get, source)
    for f in base.files:
        yield {"status": f"using existing layer {f['digest']}"}
    settings = {k: v for k, v in base.manifest.items() if k in _MODELFILE_FIELDS}
    if "parameters" in extra:
        extra["parameters"] = {**settings.get("parameters", {}), **extra["parameters"]}
    settings.update(extra)
    yield {"status": "writing manifest"}
    await asyncio.to_thread(store.derive, name, base, settings)  # a GGUF-born base keeps Ollama's layers
    yield {"status": "success"}


async def _create_from_files(store: ModelStore, name: ModelName, files: dict[str, str],
                             extra: dict[str, Any]) -> Events:
    ggufs = [path for path in files if path.lower().endswith(".gguf")]
    if len(ggufs) > 1:
        raise BadRequest("only one GGUF file can be imported at a time")
    if ggufs:
        async for event in _create_from_gguf(store, name, files[ggufs[0]], extra):
            yield event
        return
    if "config.json" not in files:
        raise BadRequest("no config.json among the files: vllama imports Hugging Face safetensors folders or a GGUF")
    for digest in files.values():
        yield {"status": f"using existing layer {digest}"}
    yield {"status": "writing manifest"}
    entries = [{"path": path, "digest": digest} for path, digest in files.items()]
    with store.pinned(files.values()):
        await asyncio.to_thread(store.write_manifest, name, entries, extra=extra)
    yield {"status": "success"}


async def _create_from_gguf(store: ModelStore, name: ModelName, digest: str, extra: dict[str, Any]) -> Events:
    from ...models.gguf import dequantize_gguf  # needs torch and transformers: imported only here

    work = store.partial_dir / f"create-{uuid.uuid4().hex}"
    try:
        yield {"status": "parsing GGUF"}
        work.mkdir(parents=True)
        gguf = work / "model.gguf"  # transformers wants a file name that says GGUF
        gguf.symlink_to(store.blob_path(digest))
        yield {"status": "converting model"}
        folder = await asyncio.to_thread(dequantize_gguf, gguf, work / "hf")
        yield {"status": "writing manifest"}
        # the uploaded GGUF stays with the model (a later create may name it again) and goes with its last name
        await asyncio.to_thread(functools.partial(store.create_from_folder, name, Path(folder), extra=extra,
                                                  sources=[digest]))
        yield {"status": "success"}
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


# -- blobs ------------------------------------------------------------------------------------

async def blob(request: Request) -> Response:
    """HEAD: 200 if the blob is here, else 404. POST: upload raw bytes, 201 (200 if already here)."""
    digest = request.path_params["digest"]
    try:
        parse_digest(digest)
    except ValueError:
        raise BadRequest("invalid digest format") from None
    store = _store(request)
    if store.has_blob(digest):
        return Response(status_code=200)
    if request.method == "HEAD":
        return error_response(404, f"blob {go_quote(digest)} not found")
    store.partial_dir.mkdir(parents=True, exist_ok=True)
    staged = store.partial_dir / f"upload-{uuid.uuid4().hex}"
    try:
        with open(staged, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        await asyncio.to_thread(store.add_blob, staged, digest, move=True)
    except DigestMismatch as err:
        raise BadRequest(str(err)) from None
    finally:
        staged.unlink(missing_ok=True)
    return Response(status_code=201)


ROUTES = [
    Route("/api/pull", pull_model, methods=["POST"]),
    Route("/api/tags", list_models, methods=["GET", "HEAD"]),
    Route("/api/show", show_model, methods=["POST"]),
    Route("/api/delete", delete_model, methods=["DELETE"]),
    Route("/api/copy", copy_model, methods=["POST"]),
    Route("/api/create", create_model, methods=["POST"]),
    Route("/api/blobs/{digest}", blob, methods=["HEAD", "POST"]),
]
