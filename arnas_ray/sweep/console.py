"""The sweep's console: one compact line per epoch of any trial, with its
objectives and the current Pareto front size, instead of Ray Tune's tables.

``--verbose`` brings back Tune's own progress output and the library warnings
this module filters (Ray's token-auth notice, Tune's checkpoint lines).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from ray import tune

from arnas_common import metrics as M
from arnas_ray.pareto import non_dominated
from arnas_ray.sweep.trainable import SEARCH_FINISHED

__all__ = ["ProgressLine", "quiet_libraries"]

#: Loggers whose INFO/WARNING lines tell a sweep's user nothing (``--verbose`` keeps them).
NOISY_LOGGERS = (
    "ray._private.authentication.authentication_token_setup",
    "ray.train._internal.storage",
    "ray.tune.tune",
    "ray.tune.execution.tune_controller",
    "ray.tune.impl.tuner_internal",
)


def quiet_libraries() -> None:
    """Silence the library chatter listed in :data:`NOISY_LOGGERS` (errors still show)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


class ProgressLine(tune.Callback):
    """Prints ``[time] trial ID epoch e/E  objective=value ... | running r, done d/N, front f``."""

    def __init__(self, objectives: Mapping[str, str], trials: int, epochs: int) -> None:
        self.objectives, self.trials, self.epochs = dict(objectives), trials, epochs
        self.finished: dict[str, list[float]] = {}
        self.done = 0
        self.started = time.monotonic()

    def _front_size(self) -> int:
        points = [p for p in self.finished.values() if all(math.isfinite(v) for v in p)]
        return len(non_dominated(points, list(self.objectives.values()))) if points else 0

    def _line(self, trials: list[Any], text: str, ended: Any = None) -> None:
        running = sum(t.status == "RUNNING" and t is not ended for t in trials)
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self.started))
        print(
            f"[{elapsed}] {text}  | running {running}, done {self.done}/{self.trials}, "
            f"front {self._front_size()}",
            flush=True,
        )

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        values = "  ".join(
            f"{m} {float(result[m]):.3f}" for m in self.objectives if result.get(m) is not None
        )
        if result.get(SEARCH_FINISHED):
            self.finished[trial.trial_id] = [
                float(result.get(m, math.nan)) for m in self.objectives
            ]
        self._line(
            trials,
            f"trial {trial.trial_id} epoch {result.get(M.EPOCH, '?')}/{self.epochs}  {values}",
        )

    def on_trial_complete(
        self, iteration: int, trials: list[Any], trial: Any, **info: Any
    ) -> None:
        self.done += 1
        how = "finished" if trial.trial_id in self.finished else "stopped early"
        self._line(trials, f"trial {trial.trial_id} {how}", ended=trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.done += 1
        self._line(
            trials,
            f"trial {trial.trial_id} failed (its error: result.json after the sweep)",
            ended=trial,
        )
