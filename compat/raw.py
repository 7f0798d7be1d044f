"""Raw HTTP cases: each recorded Ollama exchange replayed against vllama (the model name substituted),
plus requests the recordings do not cover, from reference/ollama-api.md. With --against, every case
goes to both servers and vllama's answer is compared with the live Ollama's instead of the recording."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from . import golden as golden_files
from .compare import Framing, Rules, compare
from .core import UNKNOWN_MODEL, Case, Config, Divergence, Skip, Target, skipped
from .golden import RECORDED_MODEL, Golden, Request, Response

CLIENT = "raw"
JSON = "application/json; charset=utf-8"
OPENAI_JSON = "application/json"  # the native handlers' errors, as recording 22c
MIDDLEWARE_JSON = JSON  # errors the /v1 middleware answers itself (gin's c.JSON)
REGISTRY = "registry.ollama.ai"


def full_name(model: str) -> str:
    """Ollama's fully qualified name: host/namespace/model:tag."""
    parts = model.split("/")
    if ":" not in parts[-1]:
        parts[-1] += ":latest"
    if len(parts) == 1:
        parts.insert(0, "library")
    if len(parts) == 2:
        parts.insert(0, REGISTRY)
    return "/".join(parts)


def json_answer(status: int, body: Any, content_type: str = JSON) -> Response:
    return Response(status, {"content-type": content_type}, json.dumps(body).encode())


def openai_error(status: int, message: str, content_type: str = "") -> Response:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return json_answer(status, {"error": {"message": message, "type": kind, "param": None, "code": None}},
                       content_type or OPENAI_JSON)


@dataclass
class RawCase:
    name: str
    request: Request
    expected: Response  # the recorded (or, for cases of our own, the documented) answer
    model: str = ""  # the name the answer echoes, when not the model under test
    rules: Rules = field(default_factory=Rules)
    precondition: Callable[[], None] | None = None  # raises Skip when the case cannot run here
    setup: Callable[[httpx.Client], None] | None = None  # puts a server in the state the case needs
    xfail: str | None = None
    known: str | None = None
    final: bool = False  # unloads: runs after every client


class RawSuite:
    def __init__(self, config: Config, target: Target):
        self.config = config
        self.target = target
        directory = golden_files.find_dir(config.golden_dir)
        self.golden_dir = directory
        self.goldens: dict[str, Golden] = golden_files.load(directory) if directory and directory.is_dir() else {}

    # -- building requests -----------------------------------------------------------------------

    def model_for(self, key: str) -> Callable[[], str]:
        # The embedding recordings (20, 20b, 20c, 25) were made with the generation model too: Ollama
        # embeds with any model, and so does vllama (KD-3 is retired).
        return lambda: self.config.model

    def substitute(self, request: Request, model: str) -> Request:
        """The recorded model -> the model under test; num_predict / max_tokens capped."""
        body = request.body
        if body is not None:
            body = body.replace(json.dumps(RECORDED_MODEL).encode(), json.dumps(model).encode())
            body = self._cap(body)
        return replace(request, path=request.path.replace(RECORDED_MODEL, model), body=body)

    def _cap(self, body: bytes) -> bytes:
        try:
            obj = json.loads(body)
        except ValueError:
            return body  # the malformed-JSON recordings stay as they are
        if not isinstance(obj, dict):
            return body
        cap = self.config.num_predict
        options = obj.get("options")
        changed = False
        if isinstance(options, dict) and isinstance(options.get("num_predict"), int) and options["num_predict"] > cap:
            options["num_predict"], changed = cap, True
        if isinstance(obj.get("max_tokens"), int) and obj["max_tokens"] > cap:
            obj["max_tokens"], changed = cap, True
        return json.dumps(obj, separators=(",", ":")).encode() if changed else body

    def expected_for(self, response: Response, model: str) -> Response:
        """The recording with the model under test in place of the recorded one."""
        body = response.body.replace(full_name(RECORDED_MODEL).encode(), full_name(model).encode())
        body = body.replace(RECORDED_MODEL.encode(), model.encode())
        return replace(response, body=body)

    # -- cases -----------------------------------------------------------------------------------

    def golden_case(self, key: str, *, patch: dict[str, Any] | None = None, name: str | None = None,
                    model: str | None = None, **kw: Any) -> RawCase | None:
        """The recording `key` (its request, `patch`ed, and its answer) as a case."""
        g = self.goldens.get(key)
        if g is None:
            return None
        request = _patched(g.request, patch) if patch else g.request
        return RawCase(name or g.name, request, g.response, model or "", **{**GOLDEN_RULES.get(key, {}), **kw})

    def cases(self) -> tuple[list[Case], list[Case]]:
        """(cases to run first, cases to run after the clients)."""
        raw = self._golden_cases() + self._extra_cases()
        first = [self.as_case(c, model) for c, model in raw if not c.final]
        last = [self.as_case(c, model) for c, model in raw if c.final]
        if not self.goldens:
            where = self.golden_dir or "shared/reference/ollama-golden"
            first.insert(0, skipped(CLIENT, "recorded exchanges",
                                    f"no recordings at {where}: pass --golden DIR or set {golden_files.ENV_DIR}"))
        return first, last

    def _golden_cases(self) -> list[tuple[RawCase, Callable[[], str]]]:
        out = []
        for key in self.goldens:
            case = self.golden_case(key)
            assert case is not None
            if key == "06":
                case.setup = unload_all  # the recording shows an idle server
            if key == "14d":
                case.precondition = self._lacks("tools")
            if key == "14e":
                case.precondition = self._lacks("thinking")
            out.append((case, self.model_for(key)))
        return out

    def _lacks(self, capability: str) -> Callable[[], None]:
        def check() -> None:
            if capability in self.target.capabilities(self.config.model):
                raise Skip(f"{self.config.model} has the {capability!r} capability; the recording shows a model without")
        return check

    def as_case(self, raw: RawCase, model: Callable[[], str]) -> Case:
        def run() -> str:
            if raw.precondition:
                raw.precondition()
            name = model()
            return self.exchange(raw, name)

        return Case(CLIENT, raw.name, run, xfail=raw.xfail, known=raw.known if self.config.against else None)

    def exchange(self, raw: RawCase, model: str) -> str:
        request = self.substitute(raw.request, model)
        echoed = raw.model or model
        rules = replace(raw.rules, expected_model=echoed)
        against = self.target.against
        if against is not None:
            if raw.setup:
                raw.setup(against)
            expected = send(against, request)
            reference = "Ollama at --against"
        else:
            expected = self.expected_for(raw.expected, echoed)
            reference = "the recording"
        if raw.setup:
            raw.setup(self.target.http)
        actual = send(self.target.http, request)
        try:
            lines = compare(expected, actual, rules)
        except Framing as err:
            lines = [str(err)]
        if lines:
            raise Divergence(f"{request.method} {request.path} differs from {reference}", lines)
        return ""

    def _extra_cases(self) -> list[tuple[RawCase, Callable[[], str]]]:
        m = self.config.model
        extras: list[RawCase | None] = [
            RawCase("head-api-tags", Request("HEAD", "/api/tags"), Response(200, {"content-type": JSON}, b"")),
            RawCase("head-api-version", Request("HEAD", "/api/version"), Response(200, {"content-type": JSON}, b"")),
            # keep_alive as a Go duration string, and the unitless string Go rejects
            self.golden_case("07", patch={"keep_alive": "10m"}, name="generate-keep-alive-10m"),
            RawCase("generate-keep-alive-unitless", _post("/api/generate", {
                "model": RECORDED_MODEL, "prompt": "hi", "keep_alive": "300", "stream": False}),
                json_answer(400, {"error": 'time: missing unit in duration "300"'})),
            self.golden_case("12", patch={"keep_alive": -1}, name="chat-keep-alive-negative"),
            # options clients still send although Ollama retired them
            self.golden_case("07", name="generate-retired-options", patch={"options": {
                "mirostat": 1, "mirostat_eta": 0.1, "mirostat_tau": 5.0, "tfs_z": 1.0, "penalize_newline": True,
                "num_gqa": 1, "low_vram": False, "f16_kv": True, "vocab_only": False, "use_mlock": False}}),
            self.golden_case("12", patch={"tools": []}, name="chat-tools-empty"),
            self.golden_case("07", patch={"format": ""}, name="generate-format-empty"),
            self.golden_case("12", patch={"format": ""}, name="chat-format-empty"),
            # what the Go CLI sends: empty strings and nulls for unset fields
            self.golden_case("07", name="generate-empty-and-null-fields", patch={
                "suffix": "", "system": "", "template": "", "images": None, "context": None, "think": None}),
            self.golden_case("12", patch={"think": False}, name="chat-think-false"),
            # names: case-insensitive, echoed as sent
            self.golden_case("12", patch={"model": m.upper()}, name="chat-name-case-insensitive", model=m.upper()),
            self.golden_case("05", patch={"model": DROP, "name": RECORDED_MODEL}, name="show-legacy-name"),
            # a body without Content-Type: application/json (curl -d sends form-encoded)
            self.golden_case("12", patch={"headers": {"Content-Type": "application/x-www-form-urlencoded"}},
                             name="chat-form-encoded-body"),
            RawCase("generate-option-type-error", _post("/api/generate", {
                "model": RECORDED_MODEL, "prompt": "hi", "stream": False, "options": {"temperature": "hot"}}),
                json_answer(400, {"error": 'option "temperature" must be of type float32'}), known="KD-1"),
            RawCase("chat-think-invalid", _post("/api/chat", {
                "model": RECORDED_MODEL, "messages": [{"role": "user", "content": "hi"}], "think": "x",
                "stream": False}),
                json_answer(400, {"error": 'invalid think value: "x" (must be "high", "medium", "low", "max", '
                                           'true, or false)'})),
            RawCase("generate-top-logprobs-out-of-range", _post("/api/generate", {
                "model": RECORDED_MODEL, "prompt": "hi", "top_logprobs": 21, "stream": False}),
                json_answer(400, {"error": "top_logprobs must be between 0 and 20"})),
            # Ollama names the model in full for a missing tools/insert/vision capability (like recording 14d)
            RawCase("generate-suffix-unsupported", _post("/api/generate", {
                "model": RECORDED_MODEL, "prompt": "def f(", "suffix": "return 1", "stream": False}),
                json_answer(400, {"error": f"{full_name(RECORDED_MODEL)} does not support insert"}),
                precondition=self._lacks("insert")),
            RawCase("generate-raw-with-system", _post("/api/generate", {
                "model": RECORDED_MODEL, "prompt": "hi", "raw": True, "system": "x", "stream": False}),
                json_answer(400, {"error": "raw mode does not support template, system, or context"})),
            RawCase("show-missing-model", _post("/api/show", {}),
                    json_answer(400, {"error": "model is required"})),
            # Ollama's EmbedHandler words a missing model as handleScheduleError does (server/routes.go)
            RawCase("embed-unknown-model", _post("/api/embed", {"model": UNKNOWN_MODEL, "input": "hi"}),
                    json_answer(404, {"error": f'model "{UNKNOWN_MODEL}" not found, try pulling it first'})),
            RawCase("embeddings-unknown-model", _post("/api/embeddings", {"model": UNKNOWN_MODEL, "prompt": "hi"}),
                    json_answer(404, {"error": f'model "{UNKNOWN_MODEL}" not found, try pulling it first'})),
            # refused by Ollama's /v1 middleware itself (middleware/openai.go: c.JSON), not the native handler
            RawCase("v1-chat-empty-messages", _post("/v1/chat/completions", {"model": RECORDED_MODEL, "messages": []}),
                    openai_error(400, "[] is too short - 'messages'", MIDDLEWARE_JSON)),
            # Ollama turns the path into a show request, whose 404 names the model as sent (recording 05c)
            RawCase("v1-models-unknown", Request("GET", f"/v1/models/{UNKNOWN_MODEL}"),
                    openai_error(404, f"model '{UNKNOWN_MODEL}' not found")),
            RawCase("pull-invalid-name", _post("/api/pull", {"model": "bad name!", "stream": False}),
                    json_answer(400, {"error": "invalid model name"})),
            RawCase("delete-missing-model", Request("DELETE", "/api/delete", {"Content-Type": "application/json"},
                                                    b"{}"),
                    json_answer(400, {"error": "model is required"})),
        ]
        # the newest Ollama's shapes where they differ from the 0.24 recordings, checked strictly
        tags = self.golden_case("04", name="tags-newest-fields", rules=Rules())
        if tags is not None:
            tags.expected = _newest_tags(tags.expected)
            extras.append(tags)
        stream = self.golden_case("22", name="v1-chat-stream-newest-framing", rules=Rules())
        if stream is not None:
            stream.expected = _newest_framing(stream.expected)
            extras.append(stream)
        unload_chat = self.golden_case("14c", patch={"keep_alive": 0}, name="chat-empty-messages-unload", final=True)
        if unload_chat is not None:  # like the load recording, with the unload reason
            unload_chat.expected = _with(unload_chat.expected, done_reason="unload")
            extras.append(unload_chat)
        if self.config.embed_model:
            # `ollama stop` on an embedding model: Ollama unloads before it checks capabilities
            extras.append(self.golden_case("32", name="generate-unload-embedding-model",
                                           model=self.config.embed_model,
                                           patch={"model": self.config.embed_model}))
        return [(c, lambda: m) for c in extras if c is not None]


def _with(response: Response, **fields: Any) -> Response:
    """A recorded JSON answer with some fields changed."""
    return replace(response, body=json.dumps({**json.loads(response.body), **fields}).encode())


def _newest_tags(response: Response) -> Response:
    """Recording 04 as the newest Ollama answers it: capabilities, and the context and embedding
    lengths in the details (values stand in: the comparison takes their types)."""
    body = json.loads(response.body)
    for entry in body["models"]:
        entry["details"].update(context_length=8192, embedding_length=576)
        entry["capabilities"] = ["completion"]
    return replace(response, body=json.dumps(body).encode())


def _newest_framing(response: Response) -> Response:
    """Recording 22 as the newest Ollama frames it: the role on the first chunk only, and the
    finish_reason in a chunk of its own with an empty delta."""
    frames = []
    for i, frame in enumerate(response.body.decode().split("\n\n")[:-1]):
        if frame != "data: [DONE]":
            chunk = json.loads(frame[6:])
            choice = chunk["choices"][0]
            delta = {} if choice["finish_reason"] else dict(choice["delta"])
            if i > 0:
                delta.pop("role", None)
            chunk["choices"] = [{**choice, "delta": delta}]
            frame = "data: " + json.dumps(chunk, separators=(",", ":"))
        frames.append(frame + "\n\n")
    return replace(response, body="".join(frames).encode())


def _post(path: str, body: Any) -> Request:
    return Request("POST", path, {"Content-Type": "application/json"}, json.dumps(body).encode())


DROP = object()  # in a patch: remove the field


def _patched(request: Request, patch: dict[str, Any]) -> Request:
    """A recorded request with fields set (DROP removes one, an object is merged into the recorded
    one); `headers` replaces the headers."""
    patch = dict(patch)
    headers = patch.pop("headers", None)
    body = json.loads(request.body) if request.body else {}
    for key, value in patch.items():
        if value is DROP:
            body.pop(key, None)
        elif isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **copy.deepcopy(value)}  # options: added to the recorded ones
        else:
            body[key] = copy.deepcopy(value)
    return replace(request, body=json.dumps(body).encode(),
                   headers=headers if headers is not None else dict(request.headers))


def send(client: httpx.Client, request: Request) -> Response:
    r = client.request(request.method, request.path, headers=request.headers, content=request.body)
    return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


def unload_all(client: httpx.Client) -> None:
    """Nothing loaded: `keep_alive: 0` with an empty prompt for every model in /api/ps."""
    for entry in client.get("/api/ps").json().get("models") or []:
        client.post("/api/generate", json={"model": entry["model"], "keep_alive": 0})


# Per recording: values that depend on the machine, paths compared by kind only, keys that must be there.
GOLDEN_RULES: dict[str, dict[str, Any]] = {
    # the recording machine had no DNS: the error text says so
    "18": {"rules": Rules(ignore_values=frozenset({"error"}))},
    "18b": {"rules": Rules(ignore_values=frozenset({"error"}))},
    # model_info holds the model's own metadata keys; these three are what clients read
    "05": {"rules": Rules(opaque=frozenset({"$.model_info"}),
                          required={"$.model_info": ("general.architecture", "general.parameter_count")})},
    # Recorded from Ollama 0.24; the newest Ollama adds capabilities and the context and embedding
    # lengths to every /api/tags entry
    "04": {"rules": Rules(newer=frozenset({".models[].capabilities", ".models[].details.context_length",
                                           ".models[].details.embedding_length"}))},
    # The newest Ollama names the role on a stream's first chunk only, and ends it with a chunk of
    # its own: an empty delta and the finish_reason (0.24 repeated the role and sent content "")
    "22": {"rules": Rules(newer=frozenset({".choices[].delta.role", "line[-1].choices[].delta.content"}))},
    "22b": {"rules": Rules(newer=frozenset({".choices[].delta.role"}))},
    # the unload, and /api/ps after it: after every client
    "32": {"final": True},
    "33": {"final": True},
}
