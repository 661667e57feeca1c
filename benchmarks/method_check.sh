#!/usr/bin/env bash
# Does the search help? The method check on the embedded digits, end to end, sized for
# 2 CPU cores in under 45 minutes after the install:
#   1. the default sweep (8 ARNAS searches, configs/sweep-tiny.yaml);
#   2. final adversarial training (configs/train-tiny.yaml) of its Pareto genotypes,
#      2 searched genotypes off the front, 6 random genotypes of the same space and the
#      published ARNAS and DARTS_V2, as Ray Tune trials, one CPU each;
#   3. scores on all 359 test digits at the training eps: clean, PGD-20 and AutoAttack
#      (standard version: APGD-CE, APGD-T, FAB-T, Square) with a reduced budget;
#   4. the report, whose section "Does the search help?" holds the verdict and the
#      proxy correlations.
#   bash benchmarks/method_check.sh [RUN_DIR]        (default: runs/method-check)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/method-check}
python=${PYTHON:-.venv/bin/python}
if [ -e "$run" ]; then echo "error: $run exists; give another RUN_DIR" >&2; exit 2; fi
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start ))s] $*"; }
stamp "sweep"
"$python" -m arnas_ray.sweep --out "$run" --quiet
stamp "final training"
"$python" -m analysis.train --sweep "$run" --config configs/train-tiny.yaml --random 6 --also 2 --cpus 1
stamp "scoring"
"$python" -m analysis.score --sweep "$run" --n-examples 359 --attacks clean pgd20 autoattack \
  --autoattack-budget apgd.n_iter=25 apgd_targeted.n_iter=25 apgd_targeted.n_target_classes=3 \
  fab.n_iter=25 fab.n_target_classes=3 square.n_queries=300
stamp "report"
"$python" -m analysis.report "$run"
stamp "done: $run/report.html"
