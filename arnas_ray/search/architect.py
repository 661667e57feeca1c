"""The ARNAS architecture step: per-objective alpha gradients, combined.

Ou et al., CVPR 2024, Sec. 3.2 (Eq. 3-6). For each objective ``L_k`` (natural:
cross-entropy on the clean search batch; adversarial: ``lambda`` x
cross-entropy on its PGD examples) the gradient with respect to the alphas
uses DARTS' second-order approximation (Liu et al., ICLR 2019, Eq. 7-8):

    w' = w - xi * (momentum * buf + grad_w L_train(w, a) + wd * w)
    g_k = grad_a L_k(w', a) - xi * (grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 r)
    w+- = w +- r v_k,  v_k = grad_w' L_k(w', a),  r = 0.01 / ||v_k||

where ``L_train`` is the adversarial training loss and ``xi`` the current
weight learning rate. A *combiner* then turns the ``g_k`` into one alpha
gradient: MGDA's min-norm point (the paper), a fixed weighted sum, or one
objective alone (ablations).

.. note:: The virtual step ``w'`` is computed once and shared by both
   objectives (the authors recompute it, on a copied model, per objective);
   everything runs through ``torch.func.functional_call`` on the live model,
   with scratch copies of the BatchNorm buffers so that the virtual passes do
   not move the running statistics. The results equal the authors'
   formulation; see ``tests/arnas_ray/test_architect.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from arnas_ray.search.attacks import logits_of
from arnas_ray.search.combiners import COMBINERS
from arnas_ray.search.combiners import OBJECTIVES
from arnas_ray.search.combiners import Combiner
from arnas_ray.search.combiners import FixedWeightCombiner
from arnas_ray.search.combiners import MGDACombiner
from arnas_ray.search.combiners import SingleObjectiveCombiner
from arnas_ray.search.combiners import make_combiner
from search_spaces.supernet import ALPHA_PREFIX
from search_spaces.supernet import Supernet

__all__ = [
    "COMBINERS",
    "OBJECTIVES",
    "ArchStepInfo",
    "ArchitectureStep",
    "Combiner",
    "FixedWeightCombiner",
    "MGDACombiner",
    "SingleObjectiveCombiner",
    "make_combiner",
]

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ArchStepInfo:
    """What one architecture step measured."""

    weights: dict[str, float]  # combiner weight per objective (MGDA: gamma, 1 - gamma)
    losses: dict[str, float]  # objective values at the (virtual) weights


class ArchitectureStep:
    """Computes and applies the alpha update of one search step.

    Args:
        model: the supernet (alphas are its parameters ``alphas_*``).
        optimizer: optimiser over the alphas (Adam in the paper).
        combiner: how objective gradients are combined.
        order: ``"second"`` (unrolled, the paper) or ``"first"``.
        regularization_coefficient: lambda, the scale of the adversarial objective.
        momentum, weight_decay: of the weight optimiser, for the virtual step.
        unroll_r: finite-difference radius numerator (0.01).
        autocast: context factory for mixed precision of the loss passes.
    """

    def __init__(
        self,
        model: Supernet,
        optimizer: torch.optim.Optimizer,
        combiner: Combiner,
        *,
        order: str = "second",
        regularization_coefficient: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        unroll_r: float = 0.01,
        autocast: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        if order not in ("first", "second"):
            raise ValueError(f"order must be 'first' or 'second', got '{order}'")
        self.model = model
        self.optimizer = optimizer
        self.combiner = combiner
        self.order = order
        self.regularization_coefficient = regularization_coefficient
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.unroll_r = unroll_r
        self.autocast = autocast
        self.alpha_names = [ALPHA_PREFIX + c for c in model.arch_parameters()]

    # -- functional pieces ---------------------------------------------------------
    def _loss(
        self, weights: Tensors, alphas: Tensors, buffers: Tensors, x, y, scale=1.0, mixed=True
    ):
        with self.autocast() if mixed else contextlib.nullcontext():
            logits = functional_call(self.model, {**weights, **alphas, **buffers}, (x,))
        return scale * F.cross_entropy(logits_of(logits), y)

    def _alpha_grad(self, loss: torch.Tensor, alphas: Tensors) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, list(alphas.values()), allow_unused=True)
        return [torch.zeros_like(a) if g is None else g for a, g in zip(alphas.values(), grads)]

    def virtual_step(
        self, weights: Tensors, alphas: Tensors, buffers: Tensors, x, y, lr, buffers_of
    ):
        """``w' = w - lr * (momentum * buf + grad + wd * w)``, as the weight SGD would."""
        leaves = {n: w.detach().requires_grad_(True) for n, w in weights.items()}
        loss = self._loss(leaves, alphas, buffers, x, y)
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        out = {}
        for (name, w), g in zip(weights.items(), grads):
            step = self.weight_decay * w if g is None else g + self.weight_decay * w
            buf = buffers_of(name)
            if buf is not None:
                step = step + self.momentum * buf
            out[name] = (w - lr * step).detach()
        return out

    def objective_gradients(
        self,
        train_batch: tuple[torch.Tensor, torch.Tensor],
        search_batch: tuple[torch.Tensor, torch.Tensor],
        search_adversarial: torch.Tensor | None,
        lr: float,
        weight_optimizer: torch.optim.Optimizer | None = None,
    ) -> tuple[dict[str, list[torch.Tensor]], dict[str, float]]:
        """Alpha gradient (one tensor per cell type) and value of each needed objective."""
        model = self.model
        weights = {n: p.detach() for n, p in model.named_weights()}
        alphas = {n: getattr(model, n).detach().requires_grad_(True) for n in self.alpha_names}
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        params = dict(model.named_weights())

        def momentum_buffer(name: str) -> torch.Tensor | None:
            if weight_optimizer is None:
                return None
            return weight_optimizer.state.get(params[name], {}).get("momentum_buffer")

        x_train, y_train = train_batch
        x_search, y_search = search_batch
        inputs = {"natural": x_search, "adversarial": search_adversarial}
        scales = {"natural": 1.0, "adversarial": self.regularization_coefficient}
        if self.order == "second":
            unrolled = self.virtual_step(
                weights, alphas, buffers, x_train, y_train, lr, momentum_buffer
            )
        grads, losses = {}, {}
        for objective in self.combiner.objectives:
            x, scale = inputs[objective], scales[objective]
            if x is None:
                raise ValueError(f"the {objective} objective needs its search inputs")
            if self.order == "first":
                loss = self._loss(weights, alphas, buffers, x, y_search, scale)
                grads[objective] = self._alpha_grad(loss, alphas)
            else:
                leaves = {n: w.requires_grad_(True) for n, w in unrolled.items()}
                loss = self._loss(leaves, alphas, buffers, x, y_search, scale)
                both = torch.autograd.grad(
                    loss, list(alphas.values()) + list(leaves.values()), allow_unused=True
                )
                direct = [
                    torch.zeros_like(a) if g is None else g
                    for a, g in zip(alphas.values(), both[: len(alphas)])
                ]
                vector = [
                    torch.zeros_like(w) if g is None else g
                    for w, g in zip(leaves.values(), both[len(alphas) :])
                ]
                implicit = self._hessian_vector_product(
                    weights, alphas, buffers, vector, x_train, y_train
                )
                grads[objective] = [d - lr * h for d, h in zip(direct, implicit)]
                for leaf in leaves.values():
                    leaf.requires_grad_(False)
            losses[objective] = float(loss.detach())
        return grads, losses

    def _hessian_vector_product(self, weights, alphas, buffers, vector, x, y):
        """``(grad_a L_train(w + r v) - grad_a L_train(w - r v)) / 2r``, ``r = R / ||v||``."""
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in vector]))
        r = self.unroll_r / max(float(norm), 1e-12)
        names = list(weights)
        plus = {n: weights[n] + r * v for n, v in zip(names, vector)}
        # Full precision: a finite difference of size r ~ 1e-2/||v|| drowns in bf16 rounding.
        grads_plus = self._alpha_grad(self._loss(plus, alphas, buffers, x, y, mixed=False), alphas)
        minus = {n: weights[n] - r * v for n, v in zip(names, vector)}
        grads_minus = self._alpha_grad(
            self._loss(minus, alphas, buffers, x, y, mixed=False), alphas
        )
        return [(p - m) / (2 * r) for p, m in zip(grads_plus, grads_minus)]

    # -- the step ------------------------------------------------------------------
    def step(
        self,
        train_batch: tuple[torch.Tensor, torch.Tensor],
        search_batch: tuple[torch.Tensor, torch.Tensor],
        search_adversarial: torch.Tensor | None,
        lr: float,
        weight_optimizer: torch.optim.Optimizer | None = None,
    ) -> ArchStepInfo:
        """Compute every needed objective gradient, combine, and step the alphas."""
        grads, losses = self.objective_gradients(
            train_batch, search_batch, search_adversarial, lr, weight_optimizer
        )
        per_objective = [grads[o] for o in self.combiner.objectives]
        flat = [torch.cat([g.flatten() for g in gs]) for gs in per_objective]
        values = [losses[o] for o in self.combiner.objectives]
        weights = self.combiner.weights(flat, values)
        coefficients = [
            float(w) / float(d) for w, d in zip(weights, self.combiner.divisors(flat, values))
        ]
        self.optimizer.zero_grad(set_to_none=True)
        for i, name in enumerate(self.alpha_names):
            combined = torch.stack([c * gs[i] for c, gs in zip(coefficients, per_objective)]).sum(
                0
            )
            getattr(self.model, name).grad = combined.detach().clone()
        self.optimizer.step()
        return ArchStepInfo(
            weights={o: float(w) for o, w in zip(self.combiner.objectives, weights)},
            losses=losses,
        )
