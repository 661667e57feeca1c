"""The default job, measured against its targets (issue "The default job must show
the method working").

Runs ``python -m arnas_ray.sweep`` exactly as README's first command does (default
config, fresh run directory), times it, and checks from its outputs:

* every finished trial's supernet: ``clean_acc >= 0.85`` and ``pgd_acc >= 0.40``
  on >= 300 validation digits at the trial's validation eps;
* the alphas are decided: mean over edges of the largest softmax weight >= 0.25
  (uniform: 1/7 = 0.143);
* at least 3 trials on the Pareto front, with distinct genotypes;
* wall time <= 10 minutes.

Usage::

    python benchmarks/default_job.py [--out DIR] [--json]

Prints one line per trial, the front, and PASS/MISS per target; exit status 0
whatever the outcome (it measures, it does not gate).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from arnas_common import metrics as M
from arnas_ray.results import SweepResult
from arnas_ray.search.config import get_dotted
from arnas_ray.search.config import split_run_config
from arnas_ray.search.data import make_splits
from arnas_ray.sweep import DEFAULT_CONFIG

TARGETS = {
    "clean_acc": 0.85,
    "pgd_acc": 0.40,
    "alpha_max_weight": 0.25,
    "front": 3,
    "wall_s": 600.0,
    "val_examples": 300,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="run directory (default: a fresh temporary one)")
    parser.add_argument(
        "--json", action="store_true", help="also print the figures as one JSON line"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="default-job-")) / "sweep-tiny"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "arnas_ray.sweep", "--out", str(out), "--quiet"], check=True
    )
    wall = time.perf_counter() - started
    result = SweepResult.read(out)
    trials = result.frame()
    front = json.loads((out / "pareto.json").read_text())["trials"]
    finished = trials[trials["status"] == "FINISHED"]
    fixed = yaml.safe_load(DEFAULT_CONFIG.read_text())["fixed"]
    cfg, _ = split_run_config(fixed)
    splits = make_splits(
        cfg.dataset,
        cfg.data_root,
        seed=cfg.seed,
        train_portion=cfg.train_portion,
        val_fraction=cfg.val_fraction,
        limit=cfg.data_limit,
        image_size=cfg.image_size,
    )
    n_val = min(len(splits.val), cfg.val_limit or len(splits.val))
    print(
        f"default job: {wall:.0f} s wall, {len(trials)} trials ({len(finished)} finished), "
        f"{n_val} validation digits"
    )
    for row in trials.itertuples():
        print(
            f"  trial {row.trial_id}: {row.status:<13} clean_acc {getattr(row, M.CLEAN_ACC):.3f} "
            f"pgd_acc {getattr(row, M.PGD_ACC):.3f} (eps {getattr(row, M.VAL_EPS):.3f}) "
            f"alpha_max_weight {getattr(row, M.ALPHA_MAX_WEIGHT):.3f} "
            f"train eps {get_dotted(result.trial(row.trial_id).config, 'train_attack.eps')} "
            f"time {row.time_total_s:.0f}s"
        )
    genotypes = {json.dumps(t[M.GENOTYPE], sort_keys=True) for t in front}
    print(
        f"Pareto front: {len(front)} trials, {len(genotypes)} distinct genotypes: "
        + ", ".join(f"{t['trial_id']} ({t[M.CLEAN_ACC]:.3f}, {t[M.PGD_ACC]:.3f})" for t in front)
    )
    figures = {
        "wall_s": wall,
        "trials": len(trials),
        "finished": len(finished),
        "val_examples": n_val,
        "clean_acc_min": float(finished[M.CLEAN_ACC].min()),
        "pgd_acc_min": float(finished[M.PGD_ACC].min()),
        "alpha_max_weight_min": float(finished[M.ALPHA_MAX_WEIGHT].min()),
        "front": len(front),
        "front_distinct_genotypes": len(genotypes),
        "out": str(out),
    }
    checks = {
        "every finished trial clean_acc >= 0.85": figures["clean_acc_min"] >= TARGETS["clean_acc"],
        "every finished trial pgd_acc >= 0.40": figures["pgd_acc_min"] >= TARGETS["pgd_acc"],
        "every finished trial alpha_max_weight >= 0.25": figures["alpha_max_weight_min"]
        >= TARGETS["alpha_max_weight"],
        ">= 300 validation digits": n_val >= TARGETS["val_examples"],
        ">= 3 trials on the front, distinct genotypes": min(len(front), len(genotypes))
        >= TARGETS["front"],
        "wall time <= 600 s": wall <= TARGETS["wall_s"],
        "all trials finished": len(finished) == len(trials),
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    if args.json:
        print(json.dumps({**figures, "checks": checks}))


if __name__ == "__main__":
    main()
