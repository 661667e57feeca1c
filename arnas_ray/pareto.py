"""Non-domination over raw objective arrays: the one place fronts are decided.

The sweep (which trials form ``pareto.json``), the MO-ASHA scheduler (which
trials a rung promotes) and :mod:`analysis.pareto` (reports, hypervolume) all
rank points here. The sort is Optuna's (``optuna.study._multi_objective``, a
private API pinned by brute-force tests in ``tests/analysis/test_pareto.py``).
Directions are per objective (``"maximize"`` / ``"minimize"``).

>>> import numpy as np
>>> pts = np.array([[0.9, 0.1], [0.5, 0.5], [0.4, 0.4], [0.1, 0.9]])
>>> non_dominated(pts, ["maximize", "maximize"]).tolist()
[0, 1, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "DIRECTIONS",
    "as_minimisation",
    "crowding_distance",
    "non_dominated",
    "non_domination_rank",
    "promotion_keys",
    "promotion_order",
]

DIRECTIONS = ("maximize", "minimize")


def as_minimisation(points, directions: Sequence[str]) -> np.ndarray:
    """``points`` [n, objectives] with maximised columns negated."""
    values = np.asarray(points, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"points must be a 2-D array [n, objectives], got shape {values.shape}")
    if values.shape[1] != len(directions):
        raise ValueError(f"{values.shape[1]} objectives but {len(directions)} directions")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'maximize' or 'minimize', got '{direction}'")
    return values * np.array([-1.0 if d == "maximize" else 1.0 for d in directions])


def non_domination_rank(points, directions: Sequence[str]) -> np.ndarray:
    """Non-domination rank of every point (0 = the Pareto front)."""
    from optuna.study._multi_objective import _fast_non_domination_rank

    values = as_minimisation(points, directions)
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(_fast_non_domination_rank(values), dtype=int)


def non_dominated(points, directions: Sequence[str]) -> np.ndarray:
    """Indices (ascending) of the points no other point dominates."""
    return np.flatnonzero(non_domination_rank(points, directions) == 0)


def crowding_distance(
    points, directions: Sequence[str], ranks: np.ndarray | None = None
) -> np.ndarray:
    """NSGA-II crowding distance within each non-domination rank (Deb et al. 2002).

    Per objective, a point's two neighbours in its rank span a side of its
    cuboid, normalised by the rank's range; the extremes get infinity. A
    constant objective adds nothing. ``ranks``: the points' non-domination ranks,
    when the caller has them already.
    """
    values = as_minimisation(points, directions)
    ranks = non_domination_rank(points, directions) if ranks is None else ranks
    distance = np.zeros(len(values))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        for column in values[members].T:
            order = np.argsort(column, kind="stable")
            span = column[order[-1]] - column[order[0]]
            if span == 0:
                continue
            distance[members[order[0]]] = distance[members[order[-1]]] = np.inf
            gaps = (column[order[2:]] - column[order[:-2]]) / span
            distance[members[order[1:-1]]] += gaps
    return distance


def promotion_keys(points, directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each point's non-domination rank and crowding distance (the rank computed once)."""
    ranks = non_domination_rank(points, directions)
    return ranks, crowding_distance(points, directions, ranks=ranks)


def promotion_order(
    points, directions: Sequence[str], keys: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Indices from best to worst: by non-domination rank, then larger crowding
    distance, then index (so ties resolve the same way every time). ``keys``:
    :func:`promotion_keys` of the points, when the caller has them already."""
    ranks, crowding = promotion_keys(points, directions) if keys is None else keys
    return np.lexsort((np.arange(len(ranks)), -crowding, ranks))
