#!/usr/bin/env bash
# The GPU half of issue 10's benchmark, on an NVIDIA machine given only this repository and that machine's
# PyTorch (no node_modules, no internet):
#
#   here:  deno bundle --platform=deno -o .gpu/torch_bench.js bench/torch_bench.ts
#          xz -6 -c "$(command -v deno)" > .gpu/deno.xz          (.gpu/ is git-ignored; it travels as a carry)
#   there: STRATA_PYTHON=/opt/torch/.venv/bin/python bash tools/gpu_bench.sh
#
# It compiles the shim against that PyTorch's libtorch (CUDA), checks the CUDA kernels' numbers against the
# CPU's, and prints the table of bench/torch_bench.ts (strata torch-cuda vs PyTorch CUDA fp32, same card).
# Output also goes to $OUT/gpu_bench.log when $OUT is set. Knobs (bench/torch_bench.ts): STRATA_TORCH_BENCH=parity
# (the CUDA-vs-CPU check alone), STRATA_GPU_BATCHES=128,32,384 (full ABINet-Vision; empty for none),
# STRATA_GPU_TINY=0 (skip tiny @128), STRATA_GPU_CONCLR=full,tiny (ConCLR-Vision presets @128; 0 for none),
# STRATA_BENCH_STEPS, STRATA_BENCH_VERBOSE=1 (per-step times). Measured on an H200 in about 3 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
log="$out/gpu_bench.log"
{
  date -u
  g++ --version | head -n 1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  export STRATA_PYTHON=${STRATA_PYTHON:-/opt/torch/.venv/bin/python}
  "$STRATA_PYTHON" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
  deno=$(command -v deno || true)
  if [ -z "$deno" ]; then
    xz -dc .gpu/deno.xz > /tmp/deno && chmod +x /tmp/deno && deno=/tmp/deno
  fi
  export STRATA_TORCH_SRC="$PWD/backend/torch" STRATA_TORCH_BUILD_DIR=/tmp/strata-torch STRATA_BUILD_SHIM=1 STRATA_TORCH_CUDA_STATS=${STRATA_TORCH_CUDA_STATS:-0}
  export STRATA_TORCH_BENCH=${STRATA_TORCH_BENCH:-gpu}
  start=$(date +%s)
  "$deno" run -A .gpu/torch_bench.js
  echo "bench wall time: $(( $(date +%s) - start )) s"
} 2>&1 | tee "$log"
