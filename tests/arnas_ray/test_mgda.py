from __future__ import annotations

import pytest
import torch

from arnas_ray.search.mgda import (
    combine,
    frank_wolfe_weights,
    min_norm_weights,
    two_objective_gamma,
)


@pytest.mark.parametrize("seed", range(20))
def test_closed_form_equals_general_solver(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    u1, u2 = torch.randn(50, generator=g), torch.randn(50, generator=g) * (1 + seed % 3)
    gamma = float(two_objective_gamma(u1, u2))
    assert 0.0 <= gamma <= 1.0
    fw = frank_wolfe_weights([u1, u2])
    assert float(fw[0]) == pytest.approx(gamma, abs=1e-6)
    assert float(fw.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_common_descent_direction(k: int) -> None:
    """When the gradients share a descent direction, -d does not increase any objective."""
    g = torch.Generator().manual_seed(k)
    shared = torch.randn(30, generator=g)
    grads = [shared + 0.5 * torch.randn(30, generator=g) for _ in range(k)]
    weights = min_norm_weights(grads)
    assert torch.all(weights >= 0) and float(weights.sum()) == pytest.approx(1.0, abs=1e-5)
    d = combine(grads, weights)
    assert float(d.norm()) > 0
    for grad in grads:
        # Min-norm optimality: d . g_i >= ||d||^2 > 0 (first-order decrease of every objective).
        assert float(d @ grad) >= float(d @ d) - 1e-4


def test_min_norm_beats_every_vertex_and_random_points() -> None:
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(10, generator=g) for _ in range(4)]
    best = float(combine(grads, min_norm_weights(grads)).norm())
    for _ in range(200):
        w = torch.rand(4, generator=g)
        assert best <= float(combine(grads, w / w.sum()).norm()) + 1e-5


def test_degenerate_gradients_are_safe() -> None:
    u = torch.randn(7)
    assert torch.allclose(min_norm_weights([u, u.clone()]), torch.tensor([0.5, 0.5]))
    w = min_norm_weights([u, torch.zeros(7)])
    assert torch.allclose(w, torch.tensor([0.0, 1.0]))  # the zero gradient is the min-norm point
    assert torch.isfinite(min_norm_weights([torch.zeros(3)] * 3)).all()
