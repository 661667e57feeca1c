"""The sweep's trial schedulers, built from a :class:`~arnas_ray.sweep.config.SchedulerSpec`:
FIFO (every trial runs all epochs), Ray Tune's ASHA on one metric, MO-ASHA on all objectives.

The one factory both a real sweep (:mod:`arnas_ray.sweep.run`) and the replay
(:mod:`arnas_ray.sweep.replay`) use, so a replayed scheduler is the sweep's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler
from ray.tune.schedulers import FIFOScheduler
from ray.tune.schedulers import TrialScheduler

from arnas_common import metrics as M
from arnas_ray.sweep.config import SchedulerSpec

__all__ = ["UnvalidatedAwareASHA", "build_scheduler"]


class UnvalidatedAwareASHA(ASHAScheduler):
    """Ray Tune's ASHA, except that an epoch reported without its metric's value (``None``:
    a warm-up epoch the search does not validate, ``warmup_validation: false``) is not
    judged. Tune's ASHA multiplies every reported value by the mode's sign, so a ``None``
    ended the sweep in a ``TypeError``; leaving the key out instead trips Tune's check
    that every result carries the scheduler's metric."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(self.metric, 0.0) is None:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if result.get(self.metric, 0.0) is None:
            self.on_trial_remove(tune_controller, trial)  # forget it, as ASHA does at the end
            return
        super().on_trial_complete(tune_controller, trial, result)


def build_scheduler(
    spec: SchedulerSpec,
    objectives: Mapping[str, str],
    max_t: int,
    constraints: Mapping[str, Any] | None = None,
    state_path: str | Path | None = None,
) -> TrialScheduler:
    """The scheduler ``spec`` names, for trials of ``max_t`` epochs; ``state_path`` keeps
    MO-ASHA's rungs across a driver restart."""
    if spec.type == "asha":
        return UnvalidatedAwareASHA(
            metric=spec.metric,
            mode="max" if M.OBJECTIVE_METRICS[spec.metric] == "maximize" else "min",
            max_t=max_t,
            grace_period=spec.grace_period,
            reduction_factor=spec.reduction_factor,
        )
    if spec.type == "moasha":
        from arnas_ray.sweep.moasha import MOASHA

        return MOASHA(
            objectives=dict(objectives),
            max_t=max_t,
            grace_period=spec.grace_period,
            reduction_factor=spec.reduction_factor,
            brackets=spec.brackets,
            state_path=state_path,
            constraints=constraints,
        )
    return FIFOScheduler()
