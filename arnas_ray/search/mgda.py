"""Multiple-gradient descent: the min-norm point of the objectives' gradients.

Désidéri (2012); Sener & Koltun, *Multi-Task Learning as Multi-Objective
Optimization*, NeurIPS 2018 (Alg. 1 for two objectives, Alg. 2 Frank-Wolfe for
more). ARNAS (Ou et al., CVPR 2024, Sec. 3.2) combines the natural and the
adversarial architecture gradients this way. With weights ``w`` on the
simplex minimising ``||sum_i w_i g_i||``, the combined direction ``d`` satisfies
``d . g_i >= ||d||^2`` for every objective: stepping along ``-d`` does not
increase any objective to first order.

Which objective steers the plain min-norm point depends on the gradients'
scales: a gradient ten times shorter than the other takes almost all the weight.
Sener & Koltun (2018, Sec. 3.3 and their code's ``gradient_normalizers``) divide
each gradient first: :func:`normalize_gradients` with ``l2`` (``g / ||g||``),
``loss`` (``g / L``), ``loss+`` (``g / (L ||g||)``) or ``none`` (the ARNAS paper).

>>> import torch
>>> from arnas_ray.search.mgda import min_norm_weights
>>> min_norm_weights([torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])])
tensor([0.5000, 0.5000])
>>> min_norm_weights([torch.tensor([10.0, 0.0]), torch.tensor([0.0, 1.0])])  # the short one wins
tensor([0.0099, 0.9901])
>>> min_norm_weights(normalize_gradients([torch.tensor([10.0, 0.0]), torch.tensor([0.0, 1.0])],
...                                      [1.0, 1.0], "l2"))
tensor([0.5000, 0.5000])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

__all__ = [
    "NORMALIZATIONS",
    "Normalization",
    "combine",
    "frank_wolfe_weights",
    "gradient_normalizers",
    "min_norm_weights",
    "normalize_gradients",
    "two_objective_gamma",
]

_EPS = 1e-20

#: Sener & Koltun's gradient normalisations; ``none`` is the ARNAS paper's plain MGDA.
Normalization = Literal["none", "l2", "loss", "loss+"]
NORMALIZATIONS: tuple[str, ...] = ("none", "l2", "loss", "loss+")


def gradient_normalizers(
    grads: Sequence[torch.Tensor], losses: Sequence[float], mode: str
) -> torch.Tensor:
    """The divisor of each objective's gradient (Sener & Koltun 2018, Sec. 3.3).

    ``none``: 1; ``l2``: ``||g||``; ``loss``: the objective's value ``L``;
    ``loss+``: ``L ||g||``. A zero divisor (a zero gradient or loss) is replaced by 1,
    so that objective keeps its raw, harmless gradient.

    Raises:
        ValueError: unknown ``mode``, or ``grads`` and ``losses`` of different lengths.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization '{mode}'; use one of {', '.join(NORMALIZATIONS)}")
    if len(grads) != len(losses):
        raise ValueError(f"{len(grads)} gradients but {len(losses)} losses")
    norms = (
        torch.stack([torch.linalg.vector_norm(g.double()) for g in grads])
        if grads
        else torch.zeros(0)
    )
    values = torch.tensor([float(v) for v in losses], dtype=torch.float64)
    divisor = {
        "none": torch.ones(len(grads), dtype=torch.float64),
        "l2": norms,
        "loss": values.abs(),
        "loss+": values.abs() * norms,
    }[mode]
    return torch.where(divisor > _EPS, divisor, torch.ones_like(divisor))


def normalize_gradients(
    grads: Sequence[torch.Tensor], losses: Sequence[float], mode: str
) -> list[torch.Tensor]:
    """Each gradient divided by its :func:`gradient_normalizers` divisor, in its dtype.

    .. note:: ``l2`` and ``loss`` are invariant to a positive scale of an objective, so
       with them the ARNAS ``regularization_coefficient`` (a scale on the adversarial
       objective) no longer changes the direction; ``loss+`` turns every gradient into
       a unit vector over its loss, so a scale acts through the loss alone (for
       orthogonal gradients the natural weight is ``L_nat^2 / (L_nat^2 + L_adv^2)``).
    """
    divisors = gradient_normalizers(grads, losses, mode)
    return [g / float(d) for g, d in zip(grads, divisors, strict=True)]


def two_objective_gamma(u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """``gamma* = clamp(((u2 - u1) . u2) / ||u2 - u1||^2, 0, 1)`` (weight of ``u1``).

    Equal gradients give 0.5 (every convex combination is the same vector).
    """
    u1, u2 = u1.flatten().double(), u2.flatten().double()
    diff = u2 - u1
    denominator = torch.dot(diff, diff)
    if denominator <= _EPS:
        return torch.tensor(0.5, dtype=torch.float64)
    return (torch.dot(diff, u2) / denominator).clamp(0.0, 1.0)


def frank_wolfe_weights(
    grads: Sequence[torch.Tensor], max_iter: int = 250, tol: float = 1e-12
) -> torch.Tensor:
    """Min-norm simplex weights for any number of objectives (Frank-Wolfe).

    Each iteration moves towards the vertex with the smallest inner product
    with the current combination, with exact line search (the two-objective
    closed form), as in Sener & Koltun (2018), Alg. 2; a projected-gradient
    polish on the small k x k problem then removes Frank-Wolfe's slow tail.
    """
    g = torch.stack([t.flatten().double() for t in grads])
    gram = g @ g.T
    k = len(grads)
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
    for _ in range(max_iter):
        t = int(torch.argmin(gram @ weights))
        # Line search between the current point v1 = G^T w and the vertex v2 = g_t.
        v1v1 = weights @ gram @ weights
        v1v2 = weights @ gram[:, t]
        v2v2 = gram[t, t]
        denominator = v1v1 - 2 * v1v2 + v2v2
        if denominator <= _EPS:
            break
        gamma = ((v2v2 - v1v2) / denominator).clamp(0.0, 1.0)
        new = gamma * weights
        new[t] += 1.0 - gamma
        if torch.sum(torch.abs(new - weights)) < tol:
            weights = new
            break
        weights = new
    return _refine(gram, weights)


def _project_to_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the probability simplex (Duchi et al., ICML 2008)."""
    u, _ = torch.sort(v, descending=True)
    cumulative = torch.cumsum(u, 0) - 1.0
    index = torch.arange(1, len(v) + 1, dtype=v.dtype)
    rho = int(torch.nonzero(u - cumulative / index > 0).max())
    return (v - cumulative[rho] / (rho + 1)).clamp_min(0.0)


def _refine(gram: torch.Tensor, weights: torch.Tensor, iters: int = 2000) -> torch.Tensor:
    """Projected-gradient polish of ``min w^T G w`` on the simplex.

    Frank-Wolfe converges sublinearly when the optimum lies on a face; this
    k x k refinement (step 1/L) makes the solution exact to float precision.
    """
    lipschitz = float(torch.linalg.eigvalsh(gram).max()) * 2.0
    if lipschitz <= _EPS:
        return weights
    for _ in range(iters):
        new = _project_to_simplex(weights - (2.0 * gram @ weights) / lipschitz)
        if torch.sum(torch.abs(new - weights)) < 1e-15:
            return new
        weights = new
    return weights


def min_norm_weights(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Weights on the simplex, one per objective, of the min-norm combination.

    Two objectives use the exact closed form; three or more Frank-Wolfe.
    Zero or identical gradients are handled (no division by zero).
    """
    if len(grads) == 0:
        raise ValueError("min_norm_weights needs at least one gradient")
    if len(grads) == 1:
        return torch.ones(1)
    if len(grads) == 2:
        gamma = two_objective_gamma(grads[0], grads[1])
        return torch.stack([gamma, 1 - gamma]).float()
    return frank_wolfe_weights(grads).float()


def combine(grads: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """``sum_i weights[i] * grads[i]`` in the gradients' dtype."""
    out = torch.zeros_like(grads[0])
    for w, g in zip(weights.tolist(), grads, strict=True):
        out = out + w * g
    return out
