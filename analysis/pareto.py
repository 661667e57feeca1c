"""Pareto fronts, hypervolume and knee points on raw objective arrays.

Hypervolume is Optuna's (``optuna._hypervolume``, a private API pinned by
brute-force tests in ``tests/analysis/test_pareto.py``); non-domination comes
from :mod:`arnas_ray.pareto`, the one place fronts are decided. Directions are per objective
(``"maximize"`` / ``"minimize"``); they are converted to minimisation here.

>>> import numpy as np
>>> from analysis.pareto import non_dominated, hypervolume
>>> pts = np.array([[0.9, 0.1], [0.5, 0.5], [0.4, 0.4], [0.1, 0.9]])
>>> non_dominated(pts, ["maximize", "maximize"]).tolist()
[0, 1, 3]
>>> round(hypervolume(pts, [0.0, 0.0], ["maximize", "maximize"]), 3)
0.33
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna._hypervolume import compute_hypervolume

from arnas_ray.pareto import as_minimisation as _as_minimisation
from arnas_ray.pareto import non_dominated
from arnas_ray.pareto import non_domination_rank

__all__ = [
    "hypervolume",
    "hypervolume_history",
    "knee_point",
    "non_dominated",
    "non_domination_rank",
]


def hypervolume(points, reference: Sequence[float], directions: Sequence[str]) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact).

    Points that do not strictly improve on the reference in every objective
    contribute nothing.
    """
    values = _as_minimisation(points, directions)
    ref = _as_minimisation([reference], directions)[0]
    if len(values) == 0:
        return 0.0
    inside = values[np.all(values < ref, axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(compute_hypervolume(inside, ref))


def hypervolume_history(
    points,
    reference: Sequence[float],
    directions: Sequence[str],
    feasible: Sequence[bool] | None = None,
) -> np.ndarray:
    """Hypervolume of the first ``k`` points, for ``k = 1..n`` (trial order); with
    ``feasible``, of the feasible ones among them (an infeasible point adds nothing)."""
    values = np.asarray(points, dtype=float)
    keep = (
        np.ones(len(values), dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    )
    return np.array(
        [
            hypervolume(values[: k + 1][keep[: k + 1]], reference, directions)
            if keep[: k + 1].any()
            else 0.0
            for k in range(len(values))
        ]
    )


def knee_point(points, directions: Sequence[str]) -> int:
    """Index of the knee of the front: the front point farthest from the line
    (hyperplane) through the front's per-objective extremes, after scaling each
    objective to [0, 1]; ties and flat fronts fall back to the point closest to
    the ideal point.
    """
    values = _as_minimisation(points, directions)
    front = non_dominated(points, directions)
    if len(front) == 0:
        raise ValueError("knee_point needs at least one point")
    if len(front) <= 2:
        scaled = values[front]
        span = np.ptp(scaled, axis=0)
        span[span == 0] = 1.0
        return int(front[np.argmin(np.linalg.norm((scaled - scaled.min(0)) / span, axis=1))])
    sub = values[front]
    lo, hi = sub.min(axis=0), sub.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    scaled = (sub - lo) / span
    # Distance below the hyperplane sum(x) = 1 through the extremes (after scaling).
    distance = (1.0 - scaled.sum(axis=1)) / np.sqrt(scaled.shape[1])
    return int(front[int(np.argmax(distance))])
