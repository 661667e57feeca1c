"""Ray Tune + Optuna overhead of a sweep versus plain sequential ARNAS searches.

Runs the same N searches (identical configs: every sampled key has one value)
twice: sequentially with :class:`ArnasSearch` in this process, and through
``arnas_ray.sweep.run_sweep`` with one trial at a time using every CPU. Prints
the overhead as a fraction of the sweep's wall time, the start-up cost
(``ray.init`` to the first trial) and the per-trial time. Target: <= 3 % for
trials of >= 60 s.

    python benchmarks/sweep_overhead.py --trials 2 --epochs 2 --steps 20
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from arnas_ray.search import ArnasSearch
from arnas_ray.search import split_run_config
from arnas_ray.sweep import SweepConfig
from arnas_ray.sweep import run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--steps", type=int, default=20, help="steps per epoch (sets the trial length)"
    )
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    fixed = {
        "dataset": "digits",
        "image_size": 16,
        "data_limit": 600,
        "val_limit": 60,
        "device": "cpu",
        "epochs": args.epochs,
        "batch_size": 16,
        "steps_per_epoch": args.steps,
        "train_attack": {"steps": 3},
        "search_attack": {"steps": 3},
        "val_attack_steps": 5,
        "layers": 5,
        "init_channels": 4,
        "nodes": 2,
    }
    torch.set_num_threads(cpus)
    start = time.perf_counter()
    for _ in range(args.trials):
        config, space = split_run_config({**fixed, "regularization_coefficient": 0.1})
        search = ArnasSearch(config, space)
        while search.epoch < config.epochs:
            search.train_epoch()
    sequential = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as out:
        sweep = SweepConfig.from_dict(
            {
                "name": "overhead",
                "out": out,
                "trials": args.trials,
                "max_concurrent": 1,
                "resources": {"cpu": cpus, "gpu": 0},
                "fixed": fixed,
                "report": False,
                "sampler": "random",
                "search_space": {
                    "regularization_coefficient": {"type": "choice", "values": [0.1]}
                },
            }
        )
        start = time.perf_counter()
        frame = run_sweep(sweep, verbose=0).frame()
        swept = time.perf_counter() - start
    trial_time = float(frame["time_total_s"].sum())
    print(f"\n{args.trials} trials of {args.epochs} epochs x {args.steps} steps on {cpus} CPUs")
    print(
        f"sequential ArnasSearch: {sequential:8.1f} s ({sequential / args.trials:.1f} s per "
        f"search)"
    )
    print(f"sweep (Ray Tune + Optuna): {swept:8.1f} s (trials' own time {trial_time:.1f} s)")
    print(
        f"overhead: {swept - sequential:+.1f} s = {(swept - sequential) / swept:.1%} of the "
        f"sweep's wall time; "
        f"start-up and bookkeeping outside trials: {swept - trial_time:.1f} s"
    )


if __name__ == "__main__":
    main()
