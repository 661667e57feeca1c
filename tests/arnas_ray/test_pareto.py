"""Non-domination, crowding distance and promotion order against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from arnas_ray.pareto import crowding_distance
from arnas_ray.pareto import non_dominated
from arnas_ray.pareto import non_domination_rank
from arnas_ray.pareto import promotion_order
from tests.helpers import brute_force_front
from tests.helpers import dominates

DIRECTION_SETS = [
    ["maximize", "maximize"],
    ["maximize", "minimize"],
    ["minimize", "maximize", "minimize"],
]


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("directions", DIRECTION_SETS)
def test_non_dominated_matches_brute_force(seed, directions) -> None:
    rng = np.random.default_rng(seed)
    points = rng.random((30, len(directions)))
    points[5] = points[3]  # duplicates stay on the front together
    assert non_dominated(points, directions).tolist() == brute_force_front(points, directions)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("directions", DIRECTION_SETS)
def test_ranks_peel_fronts(seed, directions) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 5, (25, len(directions))).astype(float)  # many ties
    ranks = non_domination_rank(points, directions)
    remaining = list(range(len(points)))
    for rank in range(ranks.max() + 1):
        front = [remaining[i] for i in brute_force_front(points[remaining], directions)]
        assert sorted(np.flatnonzero(ranks == rank).tolist()) == sorted(front)
        remaining = [i for i in remaining if i not in front]
    assert remaining == []


def test_crowding_distance_by_hand() -> None:
    # One front of four points on a line (both maximised): extremes infinite, inner ones the
    # normalised side lengths of their neighbours' cuboid, summed over both objectives.
    points = np.array([[0.0, 1.0], [0.2, 0.9], [0.6, 0.3], [1.0, 0.0]])
    distance = crowding_distance(points, ["maximize", "maximize"])
    assert np.isinf(distance[[0, 3]]).all()
    assert distance[1] == pytest.approx((0.6 - 0.0) / 1.0 + (1.0 - 0.3) / 1.0)
    assert distance[2] == pytest.approx((1.0 - 0.2) / 1.0 + (0.9 - 0.0) / 1.0)
    # A constant objective adds nothing; a dominated point is measured within its own rank.
    flat = crowding_distance(
        np.array([[0.0, 1.0, 5.0], [0.5, 0.5, 5.0], [1.0, 0.0, 5.0], [0.1, 0.1, 6.0]]),
        ["maximize", "maximize", "minimize"],
    )
    assert flat[1] == pytest.approx(2.0) and flat[3] == 0.0


def test_promotion_order_rank_first_then_crowding() -> None:
    points = np.array([[0.5, 0.5], [0.1, 0.1], [1.0, 0.0], [0.0, 1.0], [0.45, 0.52]])
    order = promotion_order(points, ["maximize", "maximize"]).tolist()
    assert order[-1] == 1  # the only dominated point is last
    assert set(order[:2]) == {2, 3}  # the front's extremes (infinite crowding) first
    assert order[2:4] == [0, 4] or order[2:4] == [4, 0]
    ranks = non_domination_rank(points, ["maximize", "maximize"])
    for a, b in zip(order, order[1:]):
        assert ranks[a] <= ranks[b]
        assert not dominates(points[b], points[a], ["maximize", "maximize"])
