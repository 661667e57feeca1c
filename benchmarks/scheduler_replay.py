"""Scheduler efficiency at cluster scale, by replay (:mod:`arnas_ray.sweep.replay`).

Recorded learning curves (``benchmarks/replay_tables/*.json``, built from real run
directories with ``build``) are replayed in simulated time under the sweep's own
schedulers: FIFO (every trial runs all epochs), Ray Tune's ASHA on ``pgd_acc``,
and MO-ASHA on all objectives, with rungs from the first validated epoch; a gentler
MO-ASHA with one rung at half the epochs (``moasha_late``); and, with
``--syne-tune``: Syne Tune's own MOASHA with MO-ASHA's rungs as an outside reference
(``pip install -e '.[replay]'``). Each arm of a seed draws the same sequence of
curves (uniformly, with replacement). FIFO runs ``--trials`` trials; the
early-stopping arms get FIFO's epochs as their ``budget_epochs`` and may start as
many trials as that buys. The front is the sweep's: trials that ran all their
epochs; the hypervolume uses the table's declared reference point.

Reported per table, workers and arm, over ``--seeds``: the final hypervolume,
the trial-epochs and simulated hours each arm needs to reach FIFO's final
hypervolume of the same seed, and those as ratios of FIFO's own (the first
moment FIFO itself got there; the goal is <= 0.5x), how many curves of the
table's own front the arm let finish, and the hypervolume at fractions of FIFO's
epochs and time (``--html``: those curves, median and IQR over seeds).

    python benchmarks/scheduler_replay.py --seeds 20 --workers 4 16 64 --json out.json \
        --html curves.html
    python benchmarks/scheduler_replay.py --smoke-test
    python benchmarks/scheduler_replay.py --tables benchmarks/replay_tables/digits-6.json \
        --trials 40 --syne-tune
    python benchmarks/scheduler_replay.py build digits-6 RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from ray.tune.schedulers import FIFOScheduler  # noqa: E402
from ray.tune.schedulers import TrialScheduler  # noqa: E402

from analysis.pareto import hypervolume  # noqa: E402
from arnas_common.io import atomic_write_text  # noqa: E402
from arnas_ray.pareto import non_dominated  # noqa: E402
from arnas_ray.results import SweepResult  # noqa: E402
from arnas_ray.sweep.config import SchedulerSpec  # noqa: E402
from arnas_ray.sweep.config import load_sweep_config  # noqa: E402
from arnas_ray.sweep.replay import ReplayRun  # noqa: E402
from arnas_ray.sweep.replay import ReplayTable  # noqa: E402
from arnas_ray.sweep.replay import replay  # noqa: E402

TABLES = ROOT / "benchmarks" / "replay_tables"
# The hypervolume curves are sampled at these fractions of FIFO's epochs and time (the JSON
# and ``--html`` hold them all); the markdown table quotes FRACTIONS of them.
GRID = tuple(i / 40 for i in range(41))
FRACTIONS = (0.1, 0.25, 0.5, 1.0)


class SyneTuneMOASHA(FIFOScheduler):
    """Syne Tune's MOASHA (``syne_tune.optimizer.schedulers.multiobjective``), the outside
    reference, behind Ray Tune's scheduler calls. Syne Tune minimises every metric, so
    maximised objectives are negated; its non-dominated sort is its own."""

    def __init__(self, table: ReplayTable, spec: SchedulerSpec) -> None:
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA as Reference

        super().__init__()
        self.signs = {m: -1.0 if d == "maximize" else 1.0 for m, d in table.objectives.items()}
        self.reference = Reference(
            config_space={},
            metrics=list(self.signs),
            do_minimize=True,
            max_t=table.epochs,
            grace_period=spec.grace_period,
            reduction_factor=spec.reduction_factor,
        )
        self.trials: dict[str, Any] = {}

    def _result(self, result: dict) -> dict:
        out = {k: v * self.signs[k] for k, v in result.items() if k in self.signs}
        return {**out, "training_iteration": result["training_iteration"]}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        from syne_tune.backend.trial_status import Trial as SyneTrial

        self.trials[trial.trial_id] = SyneTrial(
            trial_id=len(self.trials), config={}, creation_time=datetime.now()
        )
        self.reference.on_trial_add(self.trials[trial.trial_id])

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = self.reference.on_trial_result(
            self.trials[trial.trial_id], self._result(result)
        )
        return TrialScheduler.STOP if decision == "STOP" else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if result:
            self.reference.on_trial_complete(self.trials[trial.trial_id], self._result(result))


def syne_tune_available() -> bool:
    try:
        import syne_tune.optimizer.schedulers.multiobjective.moasha  # noqa: F401
    except ImportError:
        return False
    return True


def arms(table: ReplayTable) -> dict[str, SchedulerSpec]:
    """FIFO, ASHA and MO-ASHA with rungs from the first validated epoch (factor 3 for 20+
    epochs: rungs 1, 3, 9; factor 2 below: 1, 2, 4), and ``moasha_late``: one rung at
    half the epochs (or the first validated one), factor 2; FIFO alone where no rung
    fits."""
    factor = 3.0 if table.epochs >= 20 else 2.0
    grace = table.first_validated_epoch
    if grace >= table.epochs:
        return {"fifo": SchedulerSpec()}
    out = {
        "fifo": SchedulerSpec(),
        "asha": SchedulerSpec(type="asha", grace_period=grace, reduction_factor=factor),
        "moasha": SchedulerSpec(type="moasha", grace_period=grace, reduction_factor=factor),
    }
    late = max(grace, table.epochs // 2)
    if late != grace:
        out["moasha_late"] = SchedulerSpec(type="moasha", grace_period=late, reduction_factor=2)
    return out


def front_curve(table: ReplayTable, run: ReplayRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulated time, trial-epochs spent and hypervolume after each finished trial."""
    directions = list(table.objectives.values())
    reference = [table.reference_point[m] for m in table.objectives]
    seen: set[int] = set()
    hv = 0.0
    times, spent, volumes = [0.0], [0], [0.0]
    for finish in run.finishes:
        if finish.curve not in seen:
            seen.add(finish.curve)
            points = [
                [table.curves[c].final[m] for m in table.objectives]
                for c in seen
                if all(table.curves[c].final[m] is not None for m in table.objectives)
            ]
            hv = (
                hypervolume(np.array(points, dtype=float), reference, directions)
                if points
                else 0.0
            )
        times.append(finish.time_s)
        spent.append(finish.epochs_spent)
        volumes.append(hv)
    return np.array(times), np.array(spent), np.array(volumes)


def table_front(table: ReplayTable) -> set[int]:
    """The curves on the front of the whole table (their final epochs)."""
    finals = np.array([[c.final[m] for m in table.objectives] for c in table.curves], dtype=float)
    return {int(i) for i in non_dominated(finals, list(table.objectives.values()))}


def first_reach(xs: np.ndarray, volumes: np.ndarray, target: float) -> float:
    hit = np.flatnonzero(volumes >= target - 1e-12)
    return float(xs[hit[0]]) if len(hit) else float("inf")


def at(xs: np.ndarray, volumes: np.ndarray, x: float) -> float:
    """The hypervolume reached by ``x`` (time or epochs)."""
    index = np.searchsorted(xs, x, side="right") - 1
    return float(volumes[max(index, 0)])


def measure(
    table: ReplayTable, workers: int, trials: int, seed: int, syne_tune: bool = False
) -> dict[str, dict]:
    specs = arms(table)
    budget = trials * table.epochs
    front = table_front(table)
    runs = {
        name: replay(
            table,
            spec,
            workers,
            trials=trials if spec.type == "none" else None,
            budget_epochs=None if spec.type == "none" else budget,
            seed=seed,
        )
        for name, spec in specs.items()
    }
    if syne_tune and "moasha" in specs:
        runs["syne_tune_moasha"] = replay(
            table, SyneTuneMOASHA(table, specs["moasha"]), workers, budget_epochs=budget, seed=seed
        )
    curves = {name: front_curve(table, run) for name, run in runs.items()}
    fifo_t, fifo_e, fifo_hv = curves["fifo"]
    target = float(fifo_hv[-1])
    fifo_epochs_needed = first_reach(fifo_e, fifo_hv, target)
    fifo_time_needed = first_reach(fifo_t, fifo_hv, target)
    out = {}
    for name, (t, e, hv) in curves.items():
        run = runs[name]
        epochs_needed = first_reach(e, hv, target)
        time_needed = first_reach(t, hv, target)
        out[name] = {
            "final_hv": float(hv[-1]),
            # of the curves on the table's own front, how many this arm let finish
            "front_curves_finished": len(front & {f.curve for f in run.finishes}),
            "trials_started": len(run.curves),
            "trials_finished": len(run.finishes),
            "epochs_spent": run.epochs_spent,
            "time_h": run.time_s / 3600,
            "epochs_to_fifo_hv": epochs_needed,
            "hours_to_fifo_hv": time_needed / 3600,
            "epochs_ratio_to_fifo": epochs_needed / fifo_epochs_needed,
            "time_ratio_to_fifo": time_needed / fifo_time_needed,
            "epochs_ratio_to_fifo_budget": epochs_needed / budget,
            "hv_at_epochs": [at(e, hv, f * fifo_e[-1]) for f in GRID],
            "hv_at_time": [at(t, hv, f * fifo_t[-1]) for f in GRID],
        }
    return out


def summarise(rows: list[dict]) -> dict:
    """Median and interquartile range over seeds (inf where an arm never got there)."""

    def stats(values: list[float]) -> dict:
        a = np.array(values, dtype=float)
        return {  # order statistics, no interpolation: "never" (inf) stays inf
            q: float(np.quantile(a, p, method="inverted_cdf"))
            for q, p in (("median", 0.5), ("q25", 0.25), ("q75", 0.75))
        }

    keys = [k for k in rows[0] if not isinstance(rows[0][k], list)]
    out = {k: stats([r[k] for r in rows]) for k in keys}
    for k in ("hv_at_epochs", "hv_at_time"):
        out[k] = [stats([r[k][i] for r in rows]) for i in range(len(GRID))]
    out["reached_fifo_hv"] = int(sum(np.isfinite(r["epochs_to_fifo_hv"]) for r in rows))
    return out


def _fmt(s: dict, digits: int = 3) -> str:
    return f"{s['median']:.{digits}f} [{s['q25']:.{digits}f}, {s['q75']:.{digits}f}]"


def markdown(report: dict) -> str:
    lines = []
    seeds = len(report["seeds"])
    fractions = " / ".join(f"{f:.0%}" for f in FRACTIONS)
    quoted = [GRID.index(f) for f in FRACTIONS]
    for table_name, by_workers in report["tables"].items():
        meta = report["meta"][table_name]
        grace = next(iter(meta["rungs"].values()), {}).get("grace_period", "-")
        lines.append(
            f"\n**{table_name}** ({meta['curves']} curves of {meta['epochs']} epochs, "
            f"{meta['distinct_front']} on the table's own front; grace period {grace}; "
            f"{report['trials']} FIFO trials, {seeds} seeds; median [IQR])\n"
        )
        lines.append(
            "| workers | arm | final HV | front curves finished | trials started "
            "| epochs to FIFO's HV (x FIFO's) "
            "| time to FIFO's HV (x FIFO's) | reached | HV at "
            f"{fractions} of FIFO's epochs | HV at {fractions} of FIFO's time |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for workers, by_arm in by_workers.items():
            for arm, s in by_arm.items():
                by_epochs = " / ".join(f"{s['hv_at_epochs'][i]['median']:.3f}" for i in quoted)
                by_time = " / ".join(f"{s['hv_at_time'][i]['median']:.3f}" for i in quoted)
                lines.append(
                    f"| {workers} | {arm} | {_fmt(s['final_hv'])} | "
                    f"{s['front_curves_finished']['median']:.0f} of {meta['distinct_front']} | "
                    f"{s['trials_started']['median']:.0f} | "
                    f"{_fmt(s['epochs_ratio_to_fifo'], 2)} | "
                    f"{_fmt(s['time_ratio_to_fifo'], 2)} | "
                    f"{s['reached_fifo_hv']}/{seeds} | {by_epochs} | {by_time} |"
                )
    return "\n".join(lines)


def _steps(x: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    """A step function (each value held until the next x) as explicit corner points."""
    xs = [x[0]] + [v for v in x[1:] for _ in (0, 1)]
    ys = [v for v in y[:-1] for _ in (0, 1)] + [y[-1]]
    return xs, ys


def html_page(report: dict) -> str:
    """The hypervolume curves as one self-contained page: for each table, a row per worker
    count, against FIFO's epochs and against FIFO's simulated time; median and IQR over seeds."""
    import plotly
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    x = [100 * f for f in GRID]
    sections = []
    for table_name, by_workers in report["tables"].items():
        meta = report["meta"][table_name]
        titles = [
            f"{w} workers, {axis}"
            for w in by_workers
            for axis in ("against trial-epochs", "against simulated time")
        ]
        fig = make_subplots(rows=len(by_workers), cols=2, subplot_titles=titles)
        for row, by_arm in enumerate(by_workers.values(), 1):
            for n, (arm, s) in enumerate(by_arm.items()):
                color = qualitative.Plotly[n % len(qualitative.Plotly)]
                for col, key in ((1, "hv_at_epochs"), (2, "hv_at_time")):
                    (xs, lo), (_, hi) = (_steps(x, [v[q] for v in s[key]]) for q in ("q25", "q75"))
                    fig.add_trace(
                        go.Scatter(
                            x=xs + xs[::-1],
                            y=hi + lo[::-1],
                            fill="toself",
                            fillcolor=color,
                            opacity=0.2,
                            line={"width": 0},
                            hoverinfo="skip",
                            showlegend=False,
                            legendgroup=arm,
                        ),
                        row=row,
                        col=col,
                    )
                    fig.add_trace(
                        go.Scatter(
                            x=x,
                            y=[v["median"] for v in s[key]],
                            name=arm,
                            line={"color": color, "shape": "hv"},
                            showlegend=row == 1 and col == 1,
                            legendgroup=arm,
                        ),
                        row=row,
                        col=col,
                    )
            fig.update_xaxes(title_text="% of FIFO's trial-epochs", row=row, col=1)
            fig.update_xaxes(title_text="% of FIFO's simulated time", row=row, col=2)
            fig.update_yaxes(title_text="hypervolume", row=row, col=1)
        fig.update_layout(
            height=320 * len(by_workers),
            title=f"{table_name}: {meta['curves']} curves of {meta['epochs']} epochs, "
            f"{report['trials']} FIFO trials, {len(report['seeds'])} seeds (median, IQR band)",
        )
        sections.append(fig.to_html(full_html=False, include_plotlyjs=False))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        "<title>arnas-ray: scheduler replay</title>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        f"</head><body>{''.join(sections)}</body></html>\n"
    )


def _with_reference(run_dir: str) -> SweepResult:
    """The sweep's result; one from before reference points were recorded gets the point its
    own ``sweep.yaml`` declares (the objectives' fixed bounds), as the sweep would now."""
    result = SweepResult.read(run_dir)
    if result.reference_point is None:
        config = load_sweep_config(Path(run_dir) / "sweep.yaml", [], None)
        result = dataclasses.replace(result, reference_point=config.reference())
    return result


def build(name: str, run_dirs: list[str]) -> Path:
    table = ReplayTable.from_results(name, [(d, _with_reference(d)) for d in run_dirs])
    TABLES.mkdir(parents=True, exist_ok=True)
    path = TABLES / f"{name}.json"
    atomic_write_text(path, table.to_json() + "\n")
    print(f"{path}: {len(table.curves)} curves of {table.epochs} epochs")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build"]:
        if len(argv) < 3:
            print("usage: scheduler_replay.py build NAME RUN_DIR [RUN_DIR ...]", file=sys.stderr)
            return 2
        build(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="*", default=None, help="table JSON files")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=200, help="FIFO's trials")
    parser.add_argument("--workers", type=int, nargs="*", default=[4, 16, 64])
    parser.add_argument("--smoke-test", action="store_true", help="1 table, 2 seeds, 40 trials")
    parser.add_argument("--json", help="write the full figures here")
    parser.add_argument("--html", help="write the hypervolume curves here (self-contained)")
    parser.add_argument(
        "--syne-tune",
        action="store_true",
        help="add Syne Tune's MOASHA (pip install -e '.[replay]'; its sort grows faster than "
        "quadratically with a rung's trials: 27 s for one run of 550 trials)",
    )
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.tables] if args.tables else sorted(TABLES.glob("*.json"))
    if args.smoke_test:
        paths, args.seeds, args.trials, args.workers = paths[:1], 2, 40, [4]
    if args.syne_tune and not syne_tune_available():
        parser.error("--syne-tune needs syne_tune: pip install -e '.[replay]'")
    tables = [ReplayTable.from_json(p.read_text(), str(p)) for p in paths]
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    report: dict = {"trials": args.trials, "seeds": seeds, "tables": {}, "meta": {}}
    for table in tables:
        report["meta"][table.name] = {
            "curves": len(table.curves),
            "epochs": table.epochs,
            "rungs": {
                name: spec.model_dump() for name, spec in arms(table).items() if name != "fifo"
            },
            "distinct_front": len(table_front(table)),
            "provenance": list(table.provenance),
            "reference_point": dict(table.reference_point),
        }
        report["tables"][table.name] = {}
        for workers in args.workers:
            rows = [measure(table, workers, args.trials, seed, args.syne_tune) for seed in seeds]
            report["tables"][table.name][workers] = {
                arm: summarise([r[arm] for r in rows]) for arm in rows[0]
            }
    report["wall_s"] = time.perf_counter() - started
    print(markdown(report))
    print(
        f"\n{report['wall_s']:.0f} s for {len(tables)} tables x {len(args.workers)} worker counts "
        f"x {len(seeds)} seeds, every arm"
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    if args.html:
        atomic_write_text(args.html, html_page(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
