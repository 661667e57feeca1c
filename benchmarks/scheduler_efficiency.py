"""Sample efficiency of early stopping and of the sampler, at one epoch budget.

Arms (each a real ``python -m arnas_ray.sweep`` of the default job's recipe,
``configs/sweep-tiny.yaml``, three objectives, on the embedded digits):

* ``fifo``: NSGA-II, every trial runs all its epochs (the default job);
* ``asha``: NSGA-II + Ray Tune's ASHA on ``pgd_acc`` alone;
* ``moasha``: NSGA-II + MO-ASHA on all three objectives (arnas_ray.sweep.moasha);
* ``random``: random sampling, every trial runs all its epochs.

Every arm gets the same budget of epochs (``--budget``, the FIFO arms' trials x
epochs); the early-stopping arms may start more trials (``budget_epochs``
stops the sweep). Reported per arm over ``--seeds``: the hypervolume of the
final front (reference point: 0 for the accuracies, 1.1 x the largest params_m
of all runs), the epochs the arm needed to reach the FIFO arm's final
hypervolume of the same seed, the epochs actually spent, and wall time. The
hypervolume curve is taken in trial order over cumulative epochs spent.

    python benchmarks/scheduler_efficiency.py --seeds 0 1 2 --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.pareto import hypervolume  # noqa: E402
from arnas_ray.results import SweepResult  # noqa: E402

EPOCHS = 6
#: Cheaper epochs than the default job (18 steps, 302 validation digits), same recipe.
CHEAPER = ["fixed.steps_per_epoch=9", "fixed.val_limit=150", "report=false", "max_concurrent=2"]
ARMS = {
    "fifo": ["sampler=nsga2", "scheduler.type=none"],
    "asha": [
        "sampler=nsga2",
        "scheduler.type=asha",
        "scheduler.metric=pgd_acc",
        "scheduler.grace_period=2",
        "scheduler.reduction_factor=2",
    ],
    "moasha": [
        "sampler=nsga2",
        "scheduler.type=moasha",
        "scheduler.grace_period=2",
        "scheduler.reduction_factor=2",
    ],
    "random": ["sampler=random", "scheduler.type=none"],
}
EARLY_STOPPING = {"asha", "moasha"}


def run_arm(arm: str, seed: int, budget: int, out: Path) -> dict:
    trials = budget // EPOCHS if arm not in EARLY_STOPPING else 4 * budget // EPOCHS
    sets = [
        *CHEAPER,
        *ARMS[arm],
        f"seed={seed}",
        f"fixed.seed={seed}",
        f"trials={trials}",
        f"fixed.epochs={EPOCHS}",
    ]
    if arm in EARLY_STOPPING:  # FIFO arms spend exactly trials x epochs
        sets.append(f"budget_epochs={budget}")
    if arm in ("fifo", "random"):
        sets.append(
            "sampler_options={}" if arm == "random" else "sampler_options.population_size=4"
        )
    command = [sys.executable, "-m", "arnas_ray.sweep", "--quiet", "--out", str(out)]
    for item in sets:
        command += ["--set", item]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    result = SweepResult.read(out)
    return {"arm": arm, "seed": seed, "wall_s": wall, "result": result}


def curve(result: SweepResult, reference: list[float]) -> tuple[list[int], list[float]]:
    """Hypervolume of the finished trials so far against the epochs all trials spent so far."""
    directions = list(result.objectives.values())
    finished = {t.trial_id for t in result.finished()}
    spent, xs, ys, points = 0, [], [], []
    for trial in result.trials:
        spent += trial.epochs_done
        if trial.trial_id in finished:
            points.append([trial.value(m) for m in result.objectives])
            xs.append(spent)
            ys.append(hypervolume(np.array(points), reference, directions))
    return xs, ys


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument(
        "--budget", type=int, default=6 * EPOCHS, help="epochs per arm (default: 6 trials x 6)"
    )
    parser.add_argument(
        "--out", type=Path, help="folder for the run directories (default: temporary)"
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the figures as one JSON line"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="scheduler-efficiency-"))
    runs = []
    for seed in args.seeds:
        for arm in args.arms:
            run = run_arm(arm, seed, args.budget, out / f"{arm}-{seed}")
            runs.append(run)
            print(
                f"{arm:>7} seed {seed}: {len(run['result'].trials)} trials, "
                f"{sum(t.epochs_done for t in run['result'].trials)} epochs, "
                f"{run['wall_s']:.0f} s",
                flush=True,
            )
    objectives = dict(runs[0]["result"].objectives)
    largest = max(
        t.value(m)
        for r in runs
        for t in r["result"].finished()
        for m, d in objectives.items()
        if d == "minimize"
    )
    reference = [0.0 if d == "maximize" else 1.1 * largest for d in objectives.values()]
    rows = []
    for run in runs:
        xs, ys = curve(run["result"], reference)
        fifo = next((r for r in runs if r["arm"] == "fifo" and r["seed"] == run["seed"]), None)
        target = curve(fifo["result"], reference)[1][-1] if fifo is not None else float("nan")
        reached = next((x for x, y in zip(xs, ys) if y >= target - 1e-12), None)
        rows.append(
            {
                "arm": run["arm"],
                "seed": run["seed"],
                "hypervolume": ys[-1] if ys else 0.0,
                "epochs_spent": sum(t.epochs_done for t in run["result"].trials),
                "trials": len(run["result"].trials),
                "finished": len(run["result"].finished()),
                "epochs_to_fifo_hv": reached,
                "wall_s": run["wall_s"],
                "curve": list(zip(xs, ys)),
            }
        )
    print(
        f"\nreference point: {dict(zip(objectives, reference))}; budget {args.budget} epochs "
        f"per run"
    )
    print(
        "| arm | hypervolume (mean ± sd) | epochs to FIFO's final HV | epochs spent | trials "
        "(finished) | wall s |"
    )
    print("|---|---|---|---|---|---|")
    for arm in args.arms:
        mine = [r for r in rows if r["arm"] == arm]
        hv = np.array([r["hypervolume"] for r in mine])
        reach = [r["epochs_to_fifo_hv"] for r in mine]
        reach_text = ", ".join("never" if x is None else str(x) for x in reach)
        print(
            f"| {arm} | {hv.mean():.4f} ± {hv.std(ddof=1) if len(hv) > 1 else 0:.4f} | "
            f"{reach_text} | "
            f"{np.mean([r['epochs_spent'] for r in mine]):.0f} | "
            f"{np.mean([r['trials'] for r in mine]):.1f} "
            f"({np.mean([r['finished'] for r in mine]):.1f}) | "
            f"{np.mean([r['wall_s'] for r in mine]):.0f} |"
        )
    if args.json:
        print(json.dumps({"reference": reference, "budget": args.budget, "rows": rows}))


if __name__ == "__main__":
    main()
