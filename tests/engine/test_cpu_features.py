"""CPU defaults from the CPU's flags: bfloat16 only where the CPU has bf16 units."""

from __future__ import annotations

from vllama.engine.cpu_features import cpu_dtype, cpu_flags


def test_bf16_only_with_native_bf16_units():
    assert cpu_dtype(frozenset({"avx2", "fma"})) == "float32"
    assert cpu_dtype(frozenset({"avx2", "avx512f", "avx512_bf16"})) == "bfloat16"
    assert cpu_dtype(frozenset({"avx512f", "amx_tile", "amx_bf16"})) == "bfloat16"


def test_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(str(info)) == frozenset({"fpu", "avx2", "amx_bf16"})
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
