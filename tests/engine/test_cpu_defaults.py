"""CPU engine defaults chosen from the CPU: flags and cores mocked, no timing."""

from __future__ import annotations

import os

import pytest

from vllama.engine import args as engine_args
from vllama.engine import cpu_defaults
from vllama.engine.args import EngineSettings
from vllama.engine.cpu_defaults import CpuInfo

AMX_XEON = ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\n"
            "processor\t: 1\nflags\t\t: x\n")
EPYC_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16\n"


def test_flags_from_cpuinfo():
    info = cpu_defaults.cpu_features(AMX_XEON, cores=2)
    assert {"avx512_bf16", "amx_bf16", "avx2"} <= info.flags
    assert "x" not in info.flags  # the first processor's line only
    assert info.cores == 2
    assert cpu_defaults.bf16_capable(info)
    assert not cpu_defaults.bf16_capable(cpu_defaults.cpu_features(EPYC_AVX2, cores=2))
    assert "bf16" in cpu_defaults.cpu_features(ARM, cores=4).flags


def test_unreadable_cpuinfo_has_no_flags():
    info = cpu_defaults.cpu_features("", cores=1)
    assert info.flags == frozenset()
    assert not cpu_defaults.bf16_capable(info)


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_omp_threads_leave_a_core(cores: int, threads: int):
    info = CpuInfo(flags=frozenset(), cores=cores)
    assert cpu_defaults.process_env(info) == {"OMP_NUM_THREADS": str(threads)}


def test_apply_keeps_what_the_user_set():
    info = CpuInfo(flags=frozenset({"avx2"}), cores=8)
    env = {"OMP_NUM_THREADS": "6"}
    assert cpu_defaults.apply(info, env) == {}
    assert env == {"OMP_NUM_THREADS": "6"}
    env = {"OMP_NUM_THREADS": ""}  # empty is unset
    assert cpu_defaults.apply(info, env) == {"OMP_NUM_THREADS": "7"}
    assert env["OMP_NUM_THREADS"] == "7"


def test_usable_cores_is_at_least_one():
    assert cpu_defaults.usable_cores() >= 1


def _process_env(monkeypatch: pytest.MonkeyPatch, cuda: bool, cores: int) -> dict[str, str | None]:
    for name in ("OMP_NUM_THREADS", "VLLM_ENABLE_V1_MULTIPROCESSING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(engine_args, "_has_cuda_device", lambda: cuda)
    monkeypatch.setattr(cpu_defaults, "usable_cores", lambda: cores)
    EngineSettings().apply_process_env()
    return {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "VLLM_ENABLE_V1_MULTIPROCESSING")}


def test_process_env_on_a_cpu_machine(monkeypatch: pytest.MonkeyPatch):
    assert _process_env(monkeypatch, cuda=False, cores=2) == {"OMP_NUM_THREADS": "1",
                                                              "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def test_process_env_on_a_gpu_machine_sets_no_threads(monkeypatch: pytest.MonkeyPatch):
    assert _process_env(monkeypatch, cuda=True, cores=16) == {"OMP_NUM_THREADS": None,
                                                              "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}


def test_cpu_dtype_stays_float32_where_bf16_exists(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine_args, "on_gpu", lambda: False)
    kwargs = EngineSettings().engine_kwargs("/m", 4096)
    assert kwargs["dtype"] == "float32"
    assert EngineSettings(overrides={"dtype": "bfloat16"}).engine_kwargs("/m", 4096)["dtype"] == "bfloat16"


def _libs(tmp_path) -> tuple[str, str]:
    (tmp_path / "sys").mkdir()
    (tmp_path / "venv" / "lib").mkdir(parents=True)
    tcm = tmp_path / "sys" / "libtcmalloc_minimal.so.4"
    iomp = tmp_path / "venv" / "lib" / "libiomp5.so"
    tcm.write_bytes(b"")
    iomp.write_bytes(b"")
    return str(tcm), str(iomp)


def test_preload_libraries_found_where_they_exist(tmp_path):
    tcm, iomp = _libs(tmp_path)
    found = cpu_defaults.preload_libraries(prefix=str(tmp_path / "venv"), system_dirs=[str(tmp_path / "sys")])
    assert found == [tcm, iomp]  # the allocator first
    assert cpu_defaults.preload_libraries(prefix=str(tmp_path / "none"), system_dirs=[str(tmp_path / "none")]) == []


def test_preload_env(tmp_path):
    tcm, iomp = _libs(tmp_path)
    env = cpu_defaults.preload_env({"PATH": "/bin"}, [tcm, iomp])
    assert env is not None
    assert env["LD_PRELOAD"] == f"{tcm}:{iomp}" and env["PATH"] == "/bin"
    assert env["VLLAMA_PRELOADED"] == "1"
    assert cpu_defaults.preload_env(env, [tcm, iomp]) is None  # the re-exec does not re-exec
    assert cpu_defaults.preload_env({"VLLAMA_CPU_PRELOAD": "0"}, [tcm, iomp]) is None
    assert cpu_defaults.preload_env({}, []) is None
    # what the user preloads is kept, and one OpenMP runtime only: theirs
    user = cpu_defaults.preload_env({"LD_PRELOAD": "/x/libgomp.so.1"}, [tcm, iomp])
    assert user is not None and user["LD_PRELOAD"] == f"{tcm}:/x/libgomp.so.1"
    assert cpu_defaults.preload_env({"LD_PRELOAD": f"/y/libtcmalloc.so.4:{iomp}"}, [tcm, iomp]) is None


def test_reexec_is_a_no_op_on_a_gpu_machine(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine_args, "_has_cuda_device", lambda: True)
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("re-exec'd on a GPU machine"))
    cpu_defaults.reexec_with_preload()


def test_reexec_with_preload_on_a_cpu_machine(monkeypatch: pytest.MonkeyPatch, tmp_path):
    tcm, iomp = _libs(tmp_path)
    calls = []
    monkeypatch.setattr(engine_args, "_has_cuda_device", lambda: False)
    monkeypatch.setattr(cpu_defaults, "preload_libraries", lambda: [tcm, iomp])
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((exe, argv, env["LD_PRELOAD"])))
    for name in ("LD_PRELOAD", "VLLAMA_PRELOADED", "VLLAMA_CPU_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cpu_defaults.sys, "platform", "linux")
    cpu_defaults.reexec_with_preload()
    assert len(calls) == 1 and calls[0][2] == f"{tcm}:{iomp}"
