"""bench.workload: the schedule, the request bodies, the C-in-flight driver, and HttpTarget's measurements
against a scripted Ollama-API server on a real socket (ASGITransport would buffer the stream)."""

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from bench.workload import HttpTarget, Timer, Workload, load_prompts, run_level, warm_up
from tests.live_server import app_in_thread

PROMPTS = [{"id": "a", "prompt": "A"}, {"id": "b", "prompt": "B"}, {"id": "c", "prompt": "C"}]


def test_requests_per_level_and_the_prompt_cycle():
    w = Workload(PROMPTS)
    assert [w.n_requests(c) for c in (1, 4, 16, 32)] == [8, 8, 32, 64]
    assert [unit[0]["id"] for unit in w.schedule(1)] == list("abcabcab")
    assert all(len(unit) == 1 for unit in w.schedule(4))


def test_shipped_prompts_load():
    prompts = load_prompts()
    assert len(prompts) >= 8
    assert len({p["id"] for p in prompts}) == len(prompts)


def test_bodies_set_every_option_explicitly_raw_or_chat():
    w = Workload(PROMPTS)
    path, body = w.http_request("m", w.schedule(1)[0][0])
    assert path == "/api/generate"
    assert body["raw"] is True and body["stream"] is True and body["prompt"] == "A"
    assert body["options"] == {"num_predict": 64, "temperature": 0.0, "seed": 1, "repeat_penalty": 1.0}
    assert "format" not in body
    w = Workload(PROMPTS, kind="chat", num_predict=8)
    path, body = w.http_request("m", w.schedule(1)[1][0])
    assert path == "/api/chat" and "raw" not in body
    assert body["messages"] == [{"role": "user", "content": "B"}]
    assert body["options"]["num_predict"] == 8
    w = Workload(PROMPTS, kind="json")
    path, body = w.http_request("m", w.schedule(1)[0][0])
    assert path == "/api/chat" and body["format"] == "json" and "JSON" in body["messages"][0]["content"]


def test_an_unknown_workload_is_refused():
    with pytest.raises(ValueError):
        Workload(PROMPTS, kind="poetry")


class CountingTarget:
    name, kind = "fake", "fake"

    def __init__(self):
        self.in_flight = self.peak = self.calls = 0

    async def request(self, workload, prompt):
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        timer = Timer()
        await asyncio.sleep(0.01)
        timer.text(timer.started + 0.005)
        self.in_flight -= 1
        return timer.record(prompt["id"], 1)


@pytest.mark.parametrize("concurrency", [1, 3, 16])
def test_run_level_keeps_at_most_c_in_flight_and_returns_records_in_order(concurrency):
    target = CountingTarget()
    seen = []
    records, wall = asyncio.run(run_level(target, Workload(PROMPTS), concurrency, seen.append))
    n = max(2 * concurrency, 8)
    assert target.calls == len(records) == len(seen) == n
    assert target.peak == min(concurrency, n)
    assert [r["index"] for r in records] == list(range(n))
    assert all(0 <= r["sent_s"] <= wall for r in records)
    assert records[0]["ttft_s"] == pytest.approx(0.005)


def _scripted_app():
    async def stream(request: Request):
        body = await request.json()
        if body["model"] == "missing":
            return JSONResponse({"error": "model 'missing' not found"}, 404)
        text_key = "message" if request.url.path == "/api/chat" else "response"

        def piece(text, **extra):
            value = {"role": "assistant", "content": text} if text_key == "message" else text
            return json.dumps({"model": body["model"], text_key: value, "done": False, **extra}) + "\n"

        async def lines():
            yield piece("")  # an empty first chunk is not the first token
            await asyncio.sleep(0.05)
            for word in ("one", " two", " three"):
                yield piece(word)
                await asyncio.sleep(0.01)
            if body["options"].get("seed") == 666:
                yield json.dumps({"error": "boom"}) + "\n"
                return
            yield piece("", done=True, done_reason="length", eval_count=3, eval_duration=20_000_000,
                        prompt_eval_count=2, total_duration=80_000_000)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def version(request):
        return JSONResponse({"version": "0.24.0"})

    async def show(request):
        return JSONResponse({"details": {"format": "gguf", "quantization_level": "Q4_1"},
                             "model_info": {"general.architecture": "llama", "general.parameter_count": 134515008}})

    async def root(request):
        return PlainTextResponse("Ollama is running")

    return Starlette(routes=[Route("/", root, methods=["GET", "HEAD"]), Route("/api/version", version),
                             Route("/api/show", show, methods=["POST"]),
                             Route("/api/generate", stream, methods=["POST"]),
                             Route("/api/chat", stream, methods=["POST"])])


@pytest.fixture(scope="module")
def scripted_url():
    with app_in_thread(_scripted_app()) as url:
        yield url


async def _one(url, model="m", setup=True, client="lean", **workload):
    target = HttpTarget("t", url, model, http_client=client)
    try:
        info = await target.setup() if setup else None
        w = Workload(PROMPTS, **workload)
        return info, await target.request(w, w.schedule(1)[0][0])
    finally:
        await target.close()


@pytest.mark.parametrize("client", ["lean", "httpx"])
@pytest.mark.parametrize("kind", ["raw", "chat"])
def test_http_target_measures_a_streamed_request(scripted_url, kind, client):
    info, rec = asyncio.run(_one(scripted_url, kind=kind, client=client))
    assert info["http_client"] == client
    assert info["version"] == "0.24.0"
    assert info["details"]["format"] == "gguf" and info["architecture"] == "llama"
    assert rec["error"] is None
    assert rec["eval_count"] == 3 and rec["chunks"] == 3
    assert rec["ttft_s"] >= 0.05  # the empty first chunk did not count
    assert rec["latency_s"] >= rec["ttft_s"]
    assert rec["itl_s"] > 0 and rec["max_gap_s"] > 0
    assert rec["server"]["done_reason"] == "length" and rec["server"]["eval_duration"] == 20_000_000


@pytest.mark.parametrize("client", ["lean", "httpx"])
def test_http_target_reports_errors_instead_of_raising(scripted_url, client):
    _, rec = asyncio.run(_one(scripted_url, model="missing", client=client))
    assert rec["error"].startswith("HTTP 404: {") and rec["ttft_s"] is None
    _, rec = asyncio.run(_one(scripted_url, seed=666, client=client))
    assert rec["error"] == "stream error: boom" and rec["eval_count"] == 3
    _, rec = asyncio.run(_one("http://127.0.0.1:9", setup=False, client=client))  # nothing listens there
    assert rec["error"].startswith("Conn")


def test_warm_up_sends_n_requests(scripted_url):
    async def go():
        target = HttpTarget("t", scripted_url, "m")
        try:
            return await warm_up(target, Workload(PROMPTS), 2)
        finally:
            await target.close()

    warm = asyncio.run(go())
    assert [r["prompt"] for r in warm] == ["a", "b"]
