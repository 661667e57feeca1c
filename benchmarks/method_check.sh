#!/usr/bin/env bash
# Does the search help? The method check end to end: sweep, final adversarial training of
# every Pareto genotype, off-front searched genotypes, random genotypes of the same space
# and the published ARNAS and DARTS_V2 (3 training seeds each: their seed spread), scoring
# on the test split (clean, PGD-20, AutoAttack standard with a reduced budget), report
# (sections "Does the search help?" and "The paper's claims, tested").
#
#   bash benchmarks/method_check.sh [--dataset digits|fashion_mnist] [--seeds N] [RUN_DIR]
#
# --dataset fashion_mnist (needs `apt-get install dataset-fashion-mnist`; sized for 2 CPU
#   cores in about 2 hours): configs/sweep-fmnist.yaml with 12 searches (proxy fidelity
#   at n = 12), configs/train-fmnist.yaml, every searched genotype (Pareto + all 12 - k off
#   the front), 12 random genotypes, 2,000 test images at eps 0.1.
# --dataset digits (the default; about 25 minutes): the default sweep (8 searches),
#   configs/train-tiny.yaml, 2 off the front, 6 random, all 359 test digits.
# --seeds N trains every genotype with N seeds (the published ones with max(N, 3)).
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=digits seeds=1 run=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dataset) dataset=${2:?--dataset needs a value}; shift 2 ;;
    --seeds) seeds=${2:?--seeds needs a value}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $1; see --help" >&2; exit 2 ;;
    *) run=$1; shift ;;
  esac
done
python=${PYTHON:-.venv/bin/python}
case "$dataset" in
  digits)
    run=${run:-runs/method-check}
    sweep=(--quiet)
    train=(--config configs/train-tiny.yaml --random 6 --also 2)
    score=(--n-examples 359 --autoattack-budget apgd.n_iter=25 apgd_targeted.n_iter=25
           apgd_targeted.n_target_classes=3 fab.n_iter=25 fab.n_target_classes=3 square.n_queries=300) ;;
  fashion_mnist)
    run=${run:-runs/method-check-fmnist}
    sweep=(--config configs/sweep-fmnist.yaml --set trials=12)
    train=(--config configs/train-fmnist.yaml --random 12 --also 12)
    score=(--n-examples 2000 --autoattack-budget apgd.n_iter=10 apgd_targeted.n_iter=10
           apgd_targeted.n_target_classes=2 fab.n_iter=10 fab.n_target_classes=1 square.n_queries=100) ;;
  *) echo "error: --dataset must be digits or fashion_mnist, got '$dataset'" >&2; exit 2 ;;
esac
case "$seeds" in ''|*[!0-9]*|0) echo "error: --seeds takes a count of 1 or more, got '$seeds'" >&2; exit 2 ;; esac
if [ -e "$run" ]; then echo "error: $run exists; give another RUN_DIR" >&2; exit 2; fi
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start ))s] $*"; }
stamp "sweep ($dataset)"
"$python" -m arnas_ray.sweep --out "$run" "${sweep[@]}"
stamp "final training"
"$python" -m analysis.train --sweep "$run" "${train[@]}" --seeds "$seeds" --cpus 1
stamp "scoring"
"$python" -m analysis.score --sweep "$run" --attacks clean pgd20 autoattack "${score[@]}" --threads "$(nproc)"
stamp "report"
"$python" -m analysis.report "$run"
stamp "done: $run/report.html"
