#!/usr/bin/env bash
# The Fashion-MNIST method check at full 28x28 resolution with a larger supernet, for a
# lent GPU, sized to about 10 minutes of device time (the device's data must be copied
# along: `apt-get install dataset-fashion-mnist` there, or pass DATA_ROOT holding
# FashionMNIST/raw/). Against the CPU recipe (configs/sweep-fmnist.yaml): 28x28 instead of
# 14x14, 8 cells of 16 channels with 4 nodes instead of 5 x 8 x 2, 8 epochs of 150 steps,
# 8 searches at 4 per GPU (fractional GPUs), final networks of 8 cells x 24 channels.
#   bash benchmarks/gpu_method_check.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-${OUT:-runs}/gpu-method-check}
python=${PYTHON:-python3}
data=${DATA_ROOT:-./data}
if [ -e "$run/result.json" ]; then echo "error: $run holds a sweep; give another RUN_DIR" >&2; exit 2; fi
mkdir -p "$run"
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$run/device.txt"
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$run/times.txt"; }
stamp "sweep"
"$python" -m arnas_ray.sweep --config configs/sweep-fmnist.yaml --out "$run" --set trials=8 --set max_concurrent=4 \
  --set resources.cpu=2 --set resources.gpu=0.25 --set fixed.device=cuda --set fixed.data_root="$data" \
  --set fixed.image_size=28 --set fixed.layers=8 --set fixed.init_channels=16 --set fixed.nodes=4 \
  --set fixed.epochs=8 --set fixed.warmup_epochs=4 --set fixed.steps_per_epoch=150 --set fixed.val_limit=2000 \
  --set trial_timeout_s=900 --quiet
stamp "final training"
"$python" -m analysis.train --sweep "$run" --config configs/train-fmnist.yaml --set device=cuda \
  --set data_root="$data" --set image_size=28 --set layers=8 --set init_channels=24 --set epochs=5 \
  --set steps_per_epoch=200 --random 12 --also 8 --cpus 2 --gpus 0.25
stamp "scoring"
"$python" -m analysis.score --sweep "$run" --n-examples 2000 --device cuda --attacks clean pgd20 autoattack \
  --autoattack-budget apgd.n_iter=25 apgd_targeted.n_iter=25 apgd_targeted.n_target_classes=3 \
  fab.n_iter=25 fab.n_target_classes=3 square.n_queries=300
stamp "report"
"$python" -m analysis.report "$run"
stamp "done: $run/report.html"
