"""Optuna's samplers by short name, their options checked before Ray starts.

Ray-free. A registry (:data:`SAMPLERS`) drives the sampler conformance tests.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import optuna

from arnas_common.errors import ConfigError
from arnas_common.errors import near_miss

__all__ = ["SAMPLERS", "SamplerSpec", "make_sampler", "supports_constraints"]

#: short name -> (class in optuna.samplers, defaults)
SAMPLERS = {
    "nsga2": ("NSGAIISampler", {}),
    "nsga3": ("NSGAIIISampler", {}),
    "tpe": ("TPESampler", {"multivariate": True}),
    "random": ("RandomSampler", {}),
    "gp": ("GPSampler", {}),
    "qmc": ("QMCSampler", {}),
}


def supports_constraints(name: str) -> bool:
    """Whether the sampler ``name`` handles constraints (the ones that take Optuna's
    ``constraints_func`` read ``Trial.set_constraint``'s values too)."""
    cls = getattr(optuna.samplers, SAMPLERS.get(name.lower(), (name, {}))[0], None)
    return cls is not None and "constraints_func" in inspect.signature(cls.__init__).parameters


def make_sampler(
    name: str, options: dict[str, Any], seed: int, constraints: list[str] | None = None
) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by short name or class name; options are checked first.
    ``constraints``: the constrained metrics; the sampler must be one that reads a trial's
    constraints (Optuna 5: ``Trial.set_constraint``, which the searcher calls)."""
    cls_name, defaults = SAMPLERS.get(name.lower(), (name, {}))
    cls = getattr(optuna.samplers, cls_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler)):
        known = list(SAMPLERS) + [n for n in dir(optuna.samplers) if n.endswith("Sampler")]
        raise ConfigError(
            f"sweep: unknown sampler '{name}'{near_miss(name, known)}; use one of "
            f"{', '.join(SAMPLERS)}"
        )
    accepted = inspect.signature(cls.__init__).parameters
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"sweep: sampler_options: {cls_name} has no option '{key}'"
                f"{near_miss(key, [p for p in accepted if p != 'self'])}"
            )
    kwargs = {**defaults, **options}
    if "seed" in accepted:
        kwargs.setdefault("seed", seed)
    if constraints:
        if "constraints_func" not in accepted:
            takers = ", ".join(n for n in SAMPLERS if supports_constraints(n))
            raise ConfigError(
                f"sweep: constraints need a sampler that takes them ({takers}); {cls_name} does "
                "not: change sampler or drop constraints"
            )

    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"sweep: sampler {cls_name}({kwargs}) failed: {error}") from None


@dataclass(frozen=True)
class SamplerSpec:
    """What :func:`make_sampler` takes: how a resumed searcher builds its sampler again."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    constraints: tuple[str, ...] = ()

    def build(self) -> optuna.samplers.BaseSampler:
        return make_sampler(self.name, dict(self.options), self.seed, list(self.constraints))
