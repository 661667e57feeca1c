"""Hypervolume and knee points against brute-force oracles on random sets
(non-domination itself: tests/arnas_ray/test_pareto.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.pareto import hypervolume
from analysis.pareto import hypervolume_history
from analysis.pareto import knee_point
from analysis.pareto import non_dominated


def _brute_hv_2d_max(points, ref) -> float:
    """Exact 2-D hypervolume (both maximised) by a grid of all breakpoints."""
    xs = sorted({ref[0], *[p[0] for p in points]})
    ys = sorted({ref[1], *[p[1] for p in points]})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs, xs[1:]), zip(ys, ys[1:])):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if any(p[0] >= cx and p[1] >= cy for p in points):
            area += (x1 - x0) * (y1 - y0)
    return area


def _monte_carlo_hv_3d_min(points, ref, rng, n=200_000) -> float:
    lo = points.min(axis=0)
    samples = lo + rng.random((n, 3)) * (ref - lo)
    covered = np.zeros(n, dtype=bool)
    for p in points:
        covered |= np.all(samples >= p, axis=1)
    return float(covered.mean() * np.prod(ref - lo))


@pytest.mark.parametrize("seed", range(10))
def test_hypervolume_2d_exact(seed) -> None:
    rng = np.random.default_rng(seed)
    points = rng.random((12, 2))
    ref = [0.0, 0.0]
    assert hypervolume(points, ref, ["maximize", "maximize"]) == pytest.approx(
        _brute_hv_2d_max(points, ref), rel=1e-9
    )


def test_hypervolume_3d_against_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    points = rng.random((15, 3))
    ref = np.ones(3) * 1.1
    exact = hypervolume(points, ref, ["minimize"] * 3)
    assert exact == pytest.approx(_monte_carlo_hv_3d_min(points, ref, rng), rel=0.02)


def test_hypervolume_history_is_monotone_and_ignores_points_beyond_reference() -> None:
    rng = np.random.default_rng(1)
    points = rng.random((20, 2))
    history = hypervolume_history(points, [0.0, 0.0], ["maximize", "maximize"])
    assert np.all(np.diff(history) >= -1e-12) and history[-1] > 0
    assert hypervolume([[-1.0, 0.5]], [0.0, 0.0], ["maximize", "maximize"]) == 0.0


def test_knee_point_is_on_the_front_and_picks_the_bulge() -> None:
    points = np.array([[1.0, 0.0], [0.8, 0.7], [0.5, 0.8], [0.0, 1.0], [0.3, 0.3]])
    assert knee_point(points, ["maximize", "maximize"]) == 1
    rng = np.random.default_rng(2)
    cloud = rng.random((25, 3))
    assert knee_point(cloud, ["maximize"] * 3) in non_dominated(cloud, ["maximize"] * 3)
