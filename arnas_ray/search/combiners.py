"""How the architecture step combines the objectives' alpha gradients: strategy objects.

MGDA's min-norm point (Ou et al., CVPR 2024, Sec. 3.2; optionally of Sener &
Koltun's normalised gradients) is the paper; a fixed weighted sum and a single
objective are its ablations. Each combiner gives weights ``w`` (reported, e.g.
MGDA's gamma) and divisors ``d``; the step applies ``sum_k w_k g_k / d_k``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import torch

from arnas_ray.search import mgda

__all__ = [
    "COMBINERS",
    "OBJECTIVES",
    "Combiner",
    "FixedWeightCombiner",
    "MGDACombiner",
    "SingleObjectiveCombiner",
    "make_combiner",
]

#: Objective names, in the order gradients are passed to combiners.
OBJECTIVES = ("natural", "adversarial")


class Combiner:
    """Turns per-objective alpha gradients into one gradient: ``sum_k w_k g_k / d_k``,
    with weights ``w`` (what is reported, e.g. MGDA's gamma) and divisors ``d``."""

    #: objectives whose gradients this combiner needs
    objectives: tuple[str, ...] = OBJECTIVES

    def weights(self, grads: Sequence[torch.Tensor], losses: Sequence[float]) -> torch.Tensor:
        raise NotImplementedError

    def divisors(self, grads: Sequence[torch.Tensor], losses: Sequence[float]) -> torch.Tensor:
        """What each gradient is divided by before weighting (1: the raw gradients)."""
        return torch.ones(len(grads), dtype=torch.float64)


@dataclass(frozen=True)
class MGDACombiner(Combiner):
    """The min-norm convex combination (the paper), optionally of normalised gradients.

    ``normalization`` (Sener & Koltun 2018, Sec. 3.3): ``none`` (the paper), ``l2``,
    ``loss`` or ``loss+`` (:func:`arnas_ray.search.mgda.gradient_normalizers`). The step
    is the min-norm point of the *normalised* gradients' hull, so it keeps MGDA's
    guarantee (no objective increases to first order) in every mode.

    .. note:: Sener & Koltun's code applies the normalised problem's weights to the raw
       losses; with ``l2`` and two objectives that is always the plain sum (``gamma`` is
       0.5 for any two unit vectors), so here the weights apply to the normalised
       gradients, the direction the normalisation is meant to give.
    """

    normalization: str = "none"

    def __post_init__(self) -> None:
        if self.normalization not in mgda.NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {mgda.NORMALIZATIONS}, got '{self.normalization}'"
            )

    def divisors(self, grads: Sequence[torch.Tensor], losses: Sequence[float]) -> torch.Tensor:
        return mgda.gradient_normalizers(grads, losses, self.normalization)

    def weights(self, grads: Sequence[torch.Tensor], losses: Sequence[float]) -> torch.Tensor:
        return mgda.min_norm_weights(mgda.normalize_gradients(grads, losses, self.normalization))


@dataclass(frozen=True)
class FixedWeightCombiner(Combiner):
    """``natural_weight * g_natural + adversarial_weight * g_adversarial``."""

    natural_weight: float = 1.0
    adversarial_weight: float = 1.0

    def weights(self, grads: Sequence[torch.Tensor], losses: Sequence[float]) -> torch.Tensor:
        return torch.tensor([self.natural_weight, self.adversarial_weight])


@dataclass(frozen=True)
class SingleObjectiveCombiner(Combiner):
    """One objective only (``natural`` or ``adversarial``)."""

    objective: str = "natural"
    objectives: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got '{self.objective}'")
        object.__setattr__(self, "objectives", (self.objective,))

    def weights(self, grads: Sequence[torch.Tensor], losses: Sequence[float]) -> torch.Tensor:
        return torch.ones(1)


#: ``arch_mode`` -> its combiner (given ``natural_weight`` and ``mgda_normalization``);
#: keys are ``config.ArchMode``'s.
COMBINERS: dict[str, Callable[[float, str], Combiner]] = {
    "mgda": lambda natural_weight, normalization: MGDACombiner(normalization),
    "weighted": lambda natural_weight, normalization: FixedWeightCombiner(natural_weight, 1.0),
    "natural": lambda natural_weight, normalization: SingleObjectiveCombiner("natural"),
    "adversarial": lambda natural_weight, normalization: SingleObjectiveCombiner("adversarial"),
}


def make_combiner(mode: str, natural_weight: float = 1.0, normalization: str = "none") -> Combiner:
    """The combiner of an ``arch_mode`` (``mgda``, ``weighted``, ``natural``, ``adversarial``)."""
    if mode not in COMBINERS:
        raise ValueError(f"unknown arch_mode '{mode}'")
    return COMBINERS[mode](natural_weight, normalization)
