"""The suite's skeleton: configuration, cases, results, and what every client module shares."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import known

PASS, FAIL, SKIP, XFAIL, XPASS, KNOWN = "pass", "fail", "skip", "xfail", "xpass", "known"
UNKNOWN_MODEL = "no-such-model"


@dataclass
class Config:
    url: str
    model: str
    embed_model: str | None = None
    against: str | None = None  # a real Ollama: raw cases go to both, divergences are reported
    pull_model: str | None = None  # a model that can really be pulled (needs the Hub)
    golden_dir: Path | None = None
    num_predict: int = 8
    timeout: float = 600.0
    clients: tuple[str, ...] = ()  # only these clients (empty: all)
    match: str = ""  # only cases whose "client/case" contains this

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if self.against:
            self.against = self.against.rstrip("/")


class Skip(Exception):
    """The case cannot run here; the message says why."""


@dataclass
class Case:
    client: str
    name: str
    run: Callable[[], Any]  # returns an optional note; raises Skip, or anything else for a failure
    xfail: str | None = None  # a known incompatibility in vllama (KNOWN_DIFFERENCES.md): failing is expected
    known: str | None = None  # a deliberate difference from Ollama (KD-n): with --against, a divergence is "known"


@dataclass
class Result:
    client: str
    case: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.status == FAIL


class Divergence(AssertionError):
    """Differences between vllama's answer and the reference (a recording or a live Ollama)."""

    def __init__(self, where: str, lines: list[str]):
        super().__init__(f"{where}: " + "; ".join(lines))
        self.lines = lines


def skipped(client: str, name: str, reason: str) -> Case:
    """A case that only reports why a client cannot run here."""
    def run() -> None:
        raise Skip(reason)
    return Case(client, name, run)


def check(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Target:
    """What the suite knows about the server under test: its URL, and /api/show per model (cached)."""

    def __init__(self, config: Config):
        self.config = config
        self.http = httpx.Client(base_url=config.url, timeout=config.timeout)
        self.against = httpx.Client(base_url=config.against, timeout=config.timeout) if config.against else None
        self._shows: dict[str, dict[str, Any]] = {}

    def show(self, model: str) -> dict[str, Any]:
        if model not in self._shows:
            r = self.http.post("/api/show", json={"model": model})
            if r.status_code != 200:
                raise Skip(f"/api/show {model} answered {r.status_code}: {r.text[:120]}")
            self._shows[model] = r.json()
        return self._shows[model]

    def capabilities(self, model: str) -> list[str]:
        return list(self.show(model).get("capabilities") or [])

    def require(self, capability: str, model: str | None = None) -> None:
        model = model or self.config.model
        caps = self.capabilities(model)
        if capability not in caps:
            raise Skip(f"{model} lacks the {capability!r} capability (/api/show: {', '.join(caps) or 'none'})")

    def embed_model(self) -> str:
        if not self.config.embed_model:
            raise Skip("no --embed-model given")
        return self.config.embed_model

    def options(self, **extra: Any) -> dict[str, Any]:
        """Deterministic, short generations."""
        return {"num_predict": self.config.num_predict, "temperature": 0, "seed": 1, **extra}

    def close(self) -> None:
        self.http.close()
        if self.against is not None:
            self.against.close()


def run_case(case: Case) -> Result:
    start = time.perf_counter()
    error: Exception | None = None
    try:
        note = case.run()
    except Skip as skip:
        status, detail = SKIP, str(skip)
    except Exception as err:  # a failed assertion, a client exception, a divergence
        error, detail = err, _describe(err)
        status = FAIL
        if case.xfail and known.expected_failure(case.xfail, detail):
            status, detail = XFAIL, f"{known.label(case.xfail)} | {detail}"
        elif case.xfail:
            detail = f"not the expected failure {known.label(case.xfail)}: {detail}"
    else:
        status, detail = PASS, str(note or "")
        if case.xfail:
            status, detail = XPASS, f"{known.label(case.xfail)} is expected to fail but passes: drop the mark"
    one_line = detail.replace("\r", "").replace("\n", "\\n")  # a table row per case
    return Result(case.client, case.name, status, one_line, time.perf_counter() - start, error)


def _describe(err: Exception) -> str:
    if isinstance(err, AssertionError):
        return str(err) or "assertion failed: " + _where(err)
    text = f"{type(err).__name__}: {err}"
    return text if str(err) else text + " at " + _where(err)


def _where(err: Exception) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if "/compat/" in f.filename] or frames
    f = own[-1]
    return f"{Path(f.filename).name}:{f.lineno} {f.line or ''}".strip()


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            per = out.setdefault(r.client, {s: 0 for s in (PASS, FAIL, SKIP, XFAIL, XPASS, KNOWN)})
            per[r.status] += 1
        return out
