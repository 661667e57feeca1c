from __future__ import annotations

import pytest
import torch

from arnas_ray.search.mgda import combine
from arnas_ray.search.mgda import frank_wolfe_weights
from arnas_ray.search.mgda import min_norm_weights
from arnas_ray.search.mgda import two_objective_gamma


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


# -- Sener & Koltun's gradient normalisations ------------------------------------------
def test_normalizers_are_the_documented_divisors() -> None:
    from arnas_ray.search.mgda import gradient_normalizers

    grads = [torch.tensor([3.0, 4.0]), torch.tensor([0.0, 2.0])]
    losses = [2.0, 0.5]
    expected = {"none": [1.0, 1.0], "l2": [5.0, 2.0], "loss": [2.0, 0.5], "loss+": [10.0, 1.0]}
    for mode, divisors in expected.items():
        assert gradient_normalizers(grads, losses, mode).tolist() == pytest.approx(divisors)
    # a zero gradient keeps divisor 1 (no division by zero)
    assert gradient_normalizers([torch.zeros(2), grads[0]], [1.0, 1.0], "l2").tolist() == [
        1.0,
        5.0,
    ]
    with pytest.raises(ValueError, match="unknown normalization 'L2'"):
        gradient_normalizers(grads, losses, "L2")


@pytest.mark.parametrize("seed", range(5))
def test_normalized_gamma_equals_closed_form_on_orthogonal_gradients(seed: int) -> None:
    """For orthogonal g1 = a e1, g2 = b e2 the min-norm weight of g1 is
    (b/d2)^2 / ((a/d1)^2 + (b/d2)^2) after dividing each g_k by d_k: with l2 it is 1/2
    whatever the lengths, with loss+ it is L1^2 / (L1^2 + L2^2)."""
    from arnas_ray.search.mgda import normalize_gradients

    g = torch.Generator().manual_seed(seed)
    a, b, l1, l2 = (0.1 + 10 * torch.rand(4, generator=g, dtype=torch.float64)).tolist()
    grads = [
        torch.tensor([a, 0.0], dtype=torch.float64),
        torch.tensor([0.0, b], dtype=torch.float64),
    ]
    losses = [l1, l2]

    def gamma(mode: str) -> float:
        return float(min_norm_weights(normalize_gradients(grads, losses, mode))[0])

    assert gamma("none") == pytest.approx(b**2 / (a**2 + b**2), abs=1e-6)
    assert gamma("l2") == pytest.approx(0.5, abs=1e-6)
    assert gamma("loss") == pytest.approx(
        (b / l2) ** 2 / ((a / l1) ** 2 + (b / l2) ** 2), abs=1e-6
    )
    assert gamma("loss+") == pytest.approx(l1**2 / (l1**2 + l2**2), abs=1e-6)


def test_normalized_weights_ignore_a_scale_on_one_objective() -> None:
    """lambda scales the adversarial objective's gradient and loss alike: l2 and loss give
    the same weights whatever lambda is; none and loss+ do not."""
    from arnas_ray.search.mgda import normalize_gradients

    g = torch.Generator().manual_seed(3)
    g1, g2 = (
        torch.randn(20, generator=g, dtype=torch.float64),
        torch.randn(20, generator=g, dtype=torch.float64),
    )
    for mode in ("l2", "loss"):
        base = min_norm_weights(normalize_gradients([g1, g2], [1.3, 2.1], mode))
        scaled = min_norm_weights(normalize_gradients([g1, 0.01 * g2], [1.3, 0.01 * 2.1], mode))
        assert torch.allclose(base, scaled, atol=1e-6), mode
    for mode in ("none", "loss+"):
        pair = [
            min_norm_weights(normalize_gradients([g1, s * g2], [1.3, s * 2.1], mode))
            for s in (1.0, 0.01)
        ]
        assert not torch.allclose(pair[0], pair[1], atol=1e-3), mode
