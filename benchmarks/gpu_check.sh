#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md in one short run (about 6 minutes on one
# H100): the paper-size search step (8 cells, 24 channels, 4 nodes, batch 32, 32x32,
# PGD-7) of the authors' structure, the engine with plain edges, fused edges in fp32 and
# bf16 (time, CUDA peak memory, equal numerics), then fused edges with torch.compile
# (time incl. compilation, bounded by COMPILE_LIMIT_S).
#   bash benchmarks/gpu_check.sh [OUT_DIR]
set -uo pipefail
out=${1:-${OUT:-runs/gpu-check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/device.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/device.txt"
python3 benchmarks/search_step.py --preset paper --device cuda --impls baseline,plain,fused,fused-bf16 \
  --steps 3 --warmup 1 --json 2>&1 | grep -v Warning | tee "$out/paper.log"
timeout "${COMPILE_LIMIT_S:-200}" python3 benchmarks/search_step.py --preset paper --device cuda \
  --impls fused,fused-compile --steps 3 --warmup 1 --timing-only --json 2>&1 | grep -v -i warn | tail -20 | tee "$out/compile.log"
echo "compile run exit: $?" | tee -a "$out/compile.log"
