"""Multiple-gradient descent: the min-norm point of the objectives' gradients.

Désidéri (2012); Sener & Koltun, *Multi-Task Learning as Multi-Objective
Optimization*, NeurIPS 2018 (Alg. 1 for two objectives, Alg. 2 Frank-Wolfe for
more). ARNAS (Ou et al., CVPR 2024, Sec. 3.2) combines the natural and the
adversarial architecture gradients this way. With weights ``w`` on the
simplex minimising ``||sum_i w_i g_i||``, the combined direction ``d`` satisfies
``d . g_i >= ||d||^2`` for every objective: stepping along ``-d`` does not
increase any objective to first order.

>>> import torch
>>> from arnas_ray.search.mgda import min_norm_weights
>>> min_norm_weights([torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])])
tensor([0.5000, 0.5000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["combine", "frank_wolfe_weights", "min_norm_weights", "two_objective_gamma"]

_EPS = 1e-20


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
