#!/usr/bin/env bash
# Build llama-cpp-python with CUDA and measure codeassist on an NVIDIA machine.
#
#   benchmarks/gpu.sh            build a CUDA wheel into .venv-gpu, check offload, run the benchmarks
#
# Needs: nvidia-smi, the CUDA toolkit (nvcc) and a C++ compiler; no network beyond PyPI.
# Other GPU backends are the same recipe with other CMAKE_ARGS:
#   Apple Metal:  CMAKE_ARGS="-DGGML_METAL=on"   (the default on Apple silicon wheels built from source)
#   Vulkan:       CMAKE_ARGS="-DGGML_VULKAN=on"
#   ROCm/HIP:     CMAKE_ARGS="-DGGML_HIP=on"
# codeassist offloads every layer automatically when the build has a GPU backend
# (codeassist.model.gpuLayers = -1, the default; 0 forces the CPU) and logs one line saying so:
#   "loaded <model> in N ms: GPU: 18/18 layers offloaded; ..."
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=${VENV:-.venv-gpu}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_device.txt"
command -v nvcc >/dev/null || { echo "nvcc not found: install the CUDA toolkit" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# The CUDA build takes a while (all of llama.cpp's CUDA kernels); pip caches the wheel afterwards.
# --no-binary forces a source build even when a CPU wheel is cached.
CMAKE_ARGS="-DGGML_CUDA=on ${EXTRA_CMAKE_ARGS:-}" FORCE_CMAKE=1 \
  "$VENV/bin/pip" install --no-binary llama-cpp-python --no-cache-dir --quiet \
  "llama-cpp-python==0.3.36" 1>&2
"$VENV/bin/pip" install --quiet -e '.[test]' 1>&2
"$VENV/bin/codeassist" models install gemma-3-270m 1>&2
"$VENV/bin/codeassist" models install qwen2.5-coder-1.5b 1>&2

"$VENV/bin/python" - <<'EOF' | tee "$OUT/gpu_offload.txt"
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
from codeassist_lsp.config import ModelSettings
from codeassist_lsp.engine.llama import LlamaBackend, gpu_offload_supported
from codeassist_lsp.engine.models import resolve_model_path
print("gpu offload supported:", gpu_offload_supported())
for name in ("gemma-3-270m", "qwen2.5-coder-1.5b"):
    backend = LlamaBackend(resolve_model_path(name, None)[0], ModelSettings())
    print(name, "offload:", backend.offload_summary)
    print(name, "exact verification batch (speculation in 'auto'):", backend.exact_batch_limit())
    backend.close()
EOF

# Both tiers fully offloaded. Inline completion with the code model (model.name "auto" takes it on a
# GPU; targets p50 < 150 ms / p99 < 400 ms), every keystroke awaited; then the fast model's replay,
# each action vs its physical floor (targets: generate < 3 s, explain < 5 s, fix < 2 s, refactor < 5 s,
# docstring < 2 s, hover < 1 s), and speculation.
mkdir -p "$OUT/gpu_coder"
"$VENV/bin/python" benchmarks/typing_replay.py --pause --no-peer --settings '{"model": {"name": "qwen2.5-coder-1.5b"}}' \
  --out "$OUT/gpu_coder/typing_replay.json" | tee "$OUT/typing_replay_pause_gpu_coder.txt"
"$VENV/bin/python" benchmarks/typing_replay.py --no-peer --out "$OUT/typing_replay_gpu.json" | tee "$OUT/typing_replay_gpu.txt"
"$VENV/bin/python" benchmarks/actions_bench.py --floor --runs 5 --skip-humaneval \
  --output "$OUT/actions_gpu.json" | tee "$OUT/actions_gpu.txt"
"$VENV/bin/python" benchmarks/speculative_bench.py --out "$OUT/speculative_bench_gpu.json" | tee "$OUT/speculative_bench_gpu.txt"
