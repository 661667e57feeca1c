"""The report's data: everything it shows, computed before any drawing (tested directly).

Reads the sweep's :class:`~arnas_ray.results.SweepResult` and, when final
training scored networks, the "Does the search help?" data of
:mod:`analysis.fidelity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.claims import ClaimsData
from analysis.claims import build_claims_data
from analysis.fidelity import SearchHelpData
from analysis.fidelity import build_search_help_data
from analysis.pareto import hypervolume_history
from analysis.pareto import knee_point
from arnas_common import metrics as M
from arnas_common.errors import ArnasError
from arnas_ray.results import SweepResult
from search_spaces.genotype import Genotype

__all__ = [
    "CURVE_KEYS",
    "ReportData",
    "build_report_data",
    "hypervolume_reference",
    "objective_label",
]

CURVE_KEYS = (
    M.CLEAN_ACC,
    M.PGD_ACC,
    M.TRAIN_LOSS,
    M.MGDA_GAMMA_MEAN,
    M.ALPHA_MAX_WEIGHT,
    M.TRAIN_EPS,
)


@dataclass
class ReportData:
    """Everything the report shows, before any drawing."""

    name: str
    trials: pd.DataFrame  # one row per trial (SweepResult.frame())
    hyperparameters: list[str]  # sampled run-config keys (columns of trials)
    objectives: dict[str, str]  # metric -> direction, as the sweep optimised them
    front: list[str]  # trial_ids on the Pareto front of finished searches (all objectives)
    knee: str | None  # trial_id of the knee point
    hypervolume: list[float]  # after each finished trial, in trial order
    hypervolume_reference: list[float]  # per objective
    #: whether the reference point is the sweep's declared one (else, for run directories
    #: from before it was recorded, taken from the trials: not comparable across sweeps)
    reference_declared: bool = True
    constraints: dict[str, dict[str, float]] = field(default_factory=dict)
    hypervolume_epochs: list[int] = field(
        default_factory=list
    )  # epochs spent by all trials up to each finished one
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)  # trial_id -> per-epoch metrics
    knee_genotype: Genotype | None = None
    search_help: SearchHelpData | None = None  # "Does the search help?" (needs scores)
    claims: ClaimsData | None = None  # "The paper's claims, tested" (analysis.claims)


def _curves(result: SweepResult) -> dict[str, pd.DataFrame]:
    return {
        t.trial_id: pd.DataFrame(list(t.history)).reindex(columns=[M.EPOCH, *CURVE_KEYS])
        for t in result.trials
        if t.history
    }


def build_report_data(run_dir: str | Path) -> ReportData:
    """A sweep directory (:class:`~arnas_ray.results.SweepResult`) as :class:`ReportData`."""
    run_dir = Path(run_dir)
    result = SweepResult.read(run_dir)
    objectives = dict(result.objectives)
    directions = list(objectives.values())
    finished = result.finished()
    if not finished:
        raise ArnasError(
            f"'{run_dir}': no trial finished with every objective ({', '.join(objectives)}); "
            "nothing to draw: each trial's status and error are in result.json"
        )
    points = result.objective_values(finished)
    front = [t.trial_id for t in result.front()]
    knee, knee_genotype = None, None
    candidates = [t for t in finished if t.feasible is not False]  # the knee of the feasible front
    if candidates:
        knee_trial = candidates[knee_point(result.objective_values(candidates), directions)]
        knee, knee_genotype = knee_trial.trial_id, knee_trial.genotype
    declared = result.reference_point is not None
    if result.reference_point is not None:
        reference = [float(result.reference_point[m]) for m in objectives]
    else:
        reference = hypervolume_reference(points, directions)
    # The hypervolume counts feasible trials only (infeasible ones never reach the front).
    feasible = [t.feasible is not False for t in finished]
    history = hypervolume_history(points, reference, directions, feasible).tolist()
    spent, epochs_at = 0, []  # epochs of every trial so far (stopped and errored ones cost too)
    finished_ids = {t.trial_id for t in finished}
    for trial in result.trials:
        spent += trial.epochs_done
        if trial.trial_id in finished_ids:
            epochs_at.append(spent)
    search_help = build_search_help_data(run_dir)
    claims = build_claims_data(
        result,
        search_help.networks if search_help else None,
        search_help.score_metric if search_help else None,
    )
    return ReportData(
        name=result.name,
        trials=result.frame(),
        hyperparameters=result.sampled_keys,
        objectives=objectives,
        front=front,
        knee=knee,
        hypervolume=history,
        hypervolume_epochs=epochs_at,
        hypervolume_reference=reference,
        reference_declared=declared,
        constraints={m: dict(limit) for m, limit in result.constraints.items()},
        curves=_curves(result),
        knee_genotype=knee_genotype,
        search_help=search_help,
        claims=claims,
    )


def hypervolume_reference(points: np.ndarray, directions: list[str]) -> list[float]:
    """0 for maximised metrics (accuracies); 1.1 x the largest value for minimised ones."""
    reference = []
    for k, direction in enumerate(directions):
        column = points[:, k] if len(points) else np.zeros(1)
        if direction == "maximize":
            reference.append(min(0.0, float(column.min())))
        else:
            reference.append(1.1 * float(column.max()) if column.max() > 0 else 1.0)
    return reference


# ---------------------------------------------------------------------------------- drawing
def objective_label(trials: pd.DataFrame, metric: str, direction: str = "maximize") -> str:
    """Axis label of a search objective, with the attack and sample size behind it."""

    def single(column: str) -> Any:
        values = trials[column].dropna().unique() if column in trials else []
        return values[0] if len(values) == 1 else None

    n = single(M.VAL_EXAMPLES)
    where = f"{int(n)} validation images" if n is not None else "validation split"
    if metric == M.PGD_ACC:
        eps, steps = single(M.VAL_EPS), single(M.VAL_PGD_STEPS)
        attack = f"PGD-{int(steps)}" if steps is not None else "PGD"
        budget = f"L∞ eps {eps:.3g}" if eps is not None else "each trial's eps"
        return f"{metric} (supernet, {attack}, {budget}, {where})"
    if metric == M.PARAMS_M:
        return f"{metric} (derived network, millions; {direction})"
    return f"{metric} (supernet, {where})"
