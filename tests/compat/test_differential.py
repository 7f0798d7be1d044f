"""--against mode without an Ollama at hand: a server that replays the recordings stands in for it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat import golden
from compat.core import FAIL, KNOWN, PASS, Config
from compat.golden import RECORDED_MODEL
from compat.suite import run
from tests.live_server import app_in_thread

GOLDEN_DIR = golden.find_dir()
pytestmark = pytest.mark.skipif(GOLDEN_DIR is None, reason="the reference recordings are not next to this checkout")

Mutation = Callable[[str, str, bytes, golden.Response], golden.Response]


def _key(body: bytes | None) -> object:
    """A request body as the replay matches it: the suite caps num_predict / max_tokens."""
    if not body:
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return body
    if isinstance(obj, dict):
        obj.pop("max_tokens", None)
        if isinstance(obj.get("options"), dict):
            obj["options"].pop("num_predict", None)
    return json.dumps(obj, sort_keys=True)


def replay_app(mutate: Mutation | None = None) -> Starlette:
    recordings = list(golden.load(GOLDEN_DIR).values())

    async def answer(request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        found = next((g.response for g in recordings if g.request.method == request.method
                      and g.request.path == path and _key(g.request.body) == _key(body)), None)
        if found is None:
            found = golden.Response(404, {"content-type": "text/plain"}, b"404 page not found")
        if mutate:
            found = mutate(request.method, path, body, found)
        headers = {"content-type": found.content_type} if found.content_type else {}
        return Response(found.body, found.status, headers=headers)

    methods = ["GET", "HEAD", "POST", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", answer, methods=methods)])


def test_a_server_answering_like_the_recordings_shows_no_divergence():
    with app_in_thread(replay_app()) as url:
        report = run(Config(url=url, against=url, model=RECORDED_MODEL, embed_model=RECORDED_MODEL,
                            clients=("raw",)))
    assert not report.failures, [(r.case, r.detail) for r in report.failures]
    assert report.counts()["raw"][PASS] > 60


def test_each_divergence_from_the_reference_server_is_reported():
    def mutate(method: str, path: str, body: bytes, r: golden.Response) -> golden.Response:
        if path == "/api/version":
            return golden.Response(200, r.headers, b'{"version":24}')
        if path == "/api/tags" and method == "GET":
            data = json.loads(r.body)
            for m in data["models"]:
                del m["digest"]
            return golden.Response(200, {"content-type": "application/json"}, json.dumps(data).encode())
        if b'"hot"' in body:  # vllama's answer to a wrongly typed option (KD-1)
            return golden.Response(400, {"content-type": "application/json; charset=utf-8"},
                                   b'{"error":"option \\"temperature\\" must be of type float32"}')
        return r

    with app_in_thread(replay_app()) as reference, app_in_thread(replay_app(mutate)) as url:
        config = Config(url=url, against=reference, model=RECORDED_MODEL, clients=("raw",))
        results = {r.case: r for r in run(config).results}

    version = results["03-get-api-version"]
    assert version.status == FAIL and "$.version: int, reference str" in version.detail
    tags = results["04-get-api-tags"]
    assert tags.status == FAIL
    assert "content type 'application/json', reference 'application/json; charset=utf-8'" in tags.detail
    assert "$.models[].digest: missing" in tags.detail
    option = results["generate-option-type-error"]
    assert option.status == KNOWN and option.detail.startswith("KD-1 | ")
    assert results["01-get-root"].status == PASS
