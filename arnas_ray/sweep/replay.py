"""Schedulers measured by replay: the sweep's own schedulers driven in simulated time by
learning curves recorded in real run directories, with no training.

Syne Tune measures multi-fidelity schedulers this way (its "blackbox repository"
simulator): each trial replays a recorded search epoch by epoch, an epoch costs
the seconds it took when it was recorded, and ``workers`` trials run at once on
a simulated clock. The scheduler sees exactly the calls Ray Tune's controller
makes (``on_trial_add``, ``on_trial_result`` per epoch, ``on_trial_complete``
once when a trial ends) with the result a sweep trial reports, so a replayed
decision is the decision of a real sweep (pinned against a real Tune run in
``tests/arnas_ray/test_replay.py``). Hundreds of trials on tens of workers
replay in seconds on a laptop.

A :class:`ReplayTable` holds the curves: the per-epoch ``history`` of the
finished trials of one or more sweeps with the same objectives and epochs
(:meth:`ReplayTable.from_results`), saved as JSON (format
``arnas-replay-table/1``) with the run directories it came from.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from arnas_common import metrics as M
from arnas_common.errors import ArnasError
from arnas_ray.results import SweepResult
from arnas_ray.sweep.config import SchedulerSpec
from arnas_ray.sweep.schedulers import build_scheduler

__all__ = [
    "TABLE_FORMAT",
    "Curve",
    "Decision",
    "Finish",
    "ReplayRun",
    "ReplayTable",
    "replay",
]

TABLE_FORMAT = "arnas-replay-table/1"
_TRAINING_ITERATION = "training_iteration"  # Tune's own progress key (ASHA's time_attr)


@dataclass(frozen=True)
class Curve:
    """One recorded search: per epoch, the objectives it reported (``None`` where the epoch
    was not validated, as the sweep reports it) and the seconds the epoch took."""

    source: str  # "<run id>/<trial id>"
    metrics: tuple[Mapping[str, float | None], ...]
    seconds: tuple[float, ...]

    @property
    def final(self) -> Mapping[str, float | None]:
        return self.metrics[-1]


@dataclass(frozen=True)
class ReplayTable:
    """Recorded curves of one kind of search: same objectives, same number of epochs."""

    name: str
    objectives: Mapping[str, str]
    reference_point: Mapping[str, float]
    epochs: int
    curves: tuple[Curve, ...]
    #: where the curves came from: one entry per sweep (run directory, run id, trials kept)
    provenance: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_results(cls, name: str, results: Sequence[tuple[str, SweepResult]]) -> ReplayTable:
        """The finished trials of ``results`` (``(label, result)`` pairs, e.g. the run
        directory and its :class:`SweepResult`), each a curve.

        Raises:
            ArnasError: the sweeps disagree on objectives, epochs or reference point, or
                none has a finished trial with a full history.
        """
        curves: list[Curve] = []
        provenance = []
        objectives = reference = epochs = None
        for label, result in results:
            if objectives is None:
                objectives, reference = dict(result.objectives), result.reference_point
            if dict(result.objectives) != objectives:
                raise ArnasError(f"replay table {name}: {label} has other objectives")
            if reference is None or result.reference_point != reference:
                raise ArnasError(
                    f"replay table {name}: {label} declares no reference point or another one"
                )
            kept = 0
            for trial in result.finished():
                history = list(trial.history)
                if epochs is None:
                    epochs = len(history)
                if len(history) != epochs or [h.get(M.EPOCH) for h in history] != list(
                    range(1, epochs + 1)
                ):
                    raise ArnasError(
                        f"replay table {name}: trial {trial.trial_id} of {label} has "
                        f"{len(history)} epochs of history, not 1..{epochs}"
                    )
                curves.append(
                    Curve(
                        source=f"{result.run_id}/{trial.trial_id}",
                        metrics=tuple(
                            {key: _number(h.get(key)) for key in objectives} for h in history
                        ),
                        seconds=tuple(float(h[M.EPOCH_TIME_S]) for h in history),
                    )
                )
                kept += 1
            provenance.append({"run_dir": label, "run_id": result.run_id, "trials": kept})
        if not curves or objectives is None or reference is None or epochs is None:
            raise ArnasError(f"replay table {name}: no finished trial with a full history")
        return cls(name, objectives, dict(reference), epochs, tuple(curves), tuple(provenance))

    @property
    def first_validated_epoch(self) -> int:
        """The first epoch from which every curve reports every objective (the sweep's
        warm-up epochs may go unvalidated); a rung before it would judge on nothing."""
        first = 1
        for curve in self.curves:
            for epoch, metrics in enumerate(curve.metrics, 1):
                if any(metrics[m] is None for m in self.objectives):
                    first = max(first, epoch + 1)
        return first

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": TABLE_FORMAT,
                "name": self.name,
                "objectives": dict(self.objectives),
                "reference_point": dict(self.reference_point),
                "epochs": self.epochs,
                "provenance": [dict(p) for p in self.provenance],
                "curves": [
                    {"source": c.source, "metrics": list(c.metrics), "seconds": list(c.seconds)}
                    for c in self.curves
                ],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> ReplayTable:
        """A table saved by :meth:`to_json`; anything else is one :class:`ArnasError`."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ArnasError(f"{where}: not JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise ArnasError(f"{where}: not a replay table (format {TABLE_FORMAT})")
        try:
            objectives = {str(k): str(v) for k, v in data["objectives"].items()}
            reference = {str(k): float(v) for k, v in data["reference_point"].items()}
            epochs = int(data["epochs"])
            curves = tuple(
                Curve(
                    source=str(c["source"]),
                    metrics=tuple(
                        {key: _number(row.get(key)) for key in objectives} for row in c["metrics"]
                    ),
                    seconds=tuple(float(s) for s in c["seconds"]),
                )
                for c in data["curves"]
            )
            table = cls(
                str(data["name"]),
                objectives,
                reference,
                epochs,
                curves,
                tuple(dict(p) for p in data.get("provenance", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ArnasError(f"{where}: malformed replay table ({error!r})") from None
        if set(reference) != set(objectives) or any(
            d not in ("maximize", "minimize") for d in objectives.values()
        ):
            raise ArnasError(f"{where}: objectives and reference point do not match")
        for curve in curves:
            if len(curve.metrics) != epochs or len(curve.seconds) != epochs:
                raise ArnasError(f"{where}: curve {curve.source} does not have {epochs} epochs")
            if not all(math.isfinite(s) and s > 0 for s in curve.seconds):
                raise ArnasError(f"{where}: curve {curve.source} has a non-positive epoch time")
        if not curves:
            raise ArnasError(f"{where}: no curves")
        return table


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Decision:
    trial: int  # the trial's number (order started)
    epoch: int
    action: str  # TrialScheduler.CONTINUE | TrialScheduler.STOP


@dataclass(frozen=True)
class Finish:
    """A trial that ran all its epochs: when, after how many trial-epochs in all."""

    trial: int
    curve: int
    time_s: float
    epochs_spent: int


@dataclass(frozen=True)
class ReplayRun:
    curves: tuple[int, ...]  # trial number -> curve index
    epochs_run: tuple[int, ...]  # trial number -> epochs it ran
    decisions: tuple[Decision, ...]
    finishes: tuple[Finish, ...]  # in simulated-time order
    time_s: float  # simulated wall time at the end
    epochs_spent: int


def replay(
    table: ReplayTable,
    scheduler: SchedulerSpec | TrialScheduler,
    workers: int,
    trials: int | None = None,
    budget_epochs: int | None = None,
    seed: int = 0,
    order: Sequence[int] | None = None,
) -> ReplayRun:
    """Run ``trials`` replayed trials (or as many as ``budget_epochs`` allows; the sweep's
    ``budget_epochs``: everything stops once that many trial-epochs are spent) on
    ``workers`` simulated workers under ``scheduler``: a spec, built as a sweep builds it,
    or a fresh Ray Tune scheduler of any kind (e.g. one wrapping another library's).

    Each new trial replays a curve drawn uniformly with replacement (``seed``), or the
    curves of ``order`` in turn. Simultaneous events are taken in the order they were
    scheduled, so a run is deterministic.
    """
    if order is not None and trials is None and budget_epochs is None:
        trials = len(order)
    if workers < 1 or (trials is None and budget_epochs is None):
        raise ArnasError("replay needs workers >= 1 and a number of trials or a budget")
    if isinstance(scheduler, SchedulerSpec):
        if scheduler.type != "none" and scheduler.grace_period < table.first_validated_epoch:
            raise ArnasError(
                f"replay of {table.name}: scheduler.grace_period {scheduler.grace_period} "
                f"judges unvalidated epochs; the curves report every objective from epoch "
                f"{table.first_validated_epoch} (as a sweep refuses grace_period <= "
                "warmup_epochs)"
            )
        sched = build_scheduler(scheduler, table.objectives, table.epochs)
    else:
        sched = scheduler
    rng = np.random.default_rng(seed)
    curves: list[int] = []
    epochs_run: list[int] = []
    tune_trials: list[Trial] = []
    last_result: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    finishes: list[Finish] = []
    events: list[tuple[float, int, int]] = []  # (time, sequence, trial number)
    sequence = 0
    spent = 0
    now = 0.0

    def start() -> None:
        nonlocal sequence
        number = len(curves)
        if (trials is not None and number >= trials) or (
            budget_epochs is not None and spent >= budget_epochs
        ):
            return
        curve = (
            int(order[number % len(order)])
            if order is not None
            else int(rng.integers(len(table.curves)))
        )
        trial = Trial("replay", config={"curve": curve}, trial_id=f"{number:06d}", stub=True)
        curves.append(curve)
        epochs_run.append(0)
        tune_trials.append(trial)
        last_result.append({})
        sched.on_trial_add(None, trial)  # type: ignore[arg-type]
        heapq.heappush(events, (now + table.curves[curve].seconds[0], sequence, number))
        sequence += 1

    for _ in range(workers):
        start()
    while events:
        now, _, number = heapq.heappop(events)
        curve = table.curves[curves[number]]
        epoch = epochs_run[number] = epochs_run[number] + 1
        spent += 1
        result = {
            M.EPOCH: epoch,
            _TRAINING_ITERATION: epoch,
            **curve.metrics[epoch - 1],
            M.EPOCH_TIME_S: curve.seconds[epoch - 1],
            "trial_id": tune_trials[number].trial_id,
            "done": False,
        }
        action = sched.on_trial_result(None, tune_trials[number], result)  # type: ignore[arg-type]
        decisions.append(Decision(number, epoch, action))
        last_result[number] = result
        if action == TrialScheduler.STOP or epoch == table.epochs:
            sched.on_trial_complete(None, tune_trials[number], result)  # type: ignore[arg-type]
            if epoch == table.epochs:
                finishes.append(Finish(number, curves[number], now, spent))
        else:
            heapq.heappush(events, (now + curve.seconds[epoch], sequence, number))
            sequence += 1
        if budget_epochs is not None and spent >= budget_epochs:
            for _, _, other in sorted(events):  # the sweep's EpochBudget: all stop at once
                sched.on_trial_complete(None, tune_trials[other], last_result[other])  # type: ignore[arg-type]
            events.clear()
            break
        if action == TrialScheduler.STOP or epoch == table.epochs:
            start()
    return ReplayRun(
        tuple(curves), tuple(epochs_run), tuple(decisions), tuple(finishes), now, spent
    )
