"""MO-ASHA: asynchronous successive halving that judges trials on *all* objectives.

Schmucker et al., "Multi-objective multi-fidelity hyperparameter optimization
with application to fairness" (2021), as Syne Tune's ``MOASHA``, here as a Ray
Tune scheduler. Rungs sit at ``grace_period * reduction_factor**k`` epochs
below ``max_t`` (``brackets`` > 1: bracket ``s`` starts at ``grace_period *
reduction_factor**s``). When a trial reaches a rung its objective vector is recorded
there, and it continues only if it is among the best ``ceil(n /
reduction_factor)`` of the ``n`` trials recorded at that rung, ordered by
non-domination rank and then crowding distance (:func:`arnas_ray.pareto.
promotion_order`); a trial tied with the last one kept continues too. A trial
with a missing or non-finite objective ranks last. Like Tune's ASHA the
decision is made once, when the trial arrives (asynchronous: no waiting for a
full rung).

Ray Tune never checkpoints a scheduler, so the rungs are kept in a JSON file
(``state_path``, written atomically at every record) and read back on
``--resume``: a resumed sweep judges later trials against the same rungs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler
from ray.tune.schedulers import TrialScheduler

from arnas_common import metrics as M
from arnas_common.io import atomic_write_text
from arnas_ray.pareto import promotion_keys
from arnas_ray.pareto import promotion_order

__all__ = ["MOASHA", "continues", "rung_milestones"]


def rung_milestones(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """Epochs at which trials are judged: ``grace_period * reduction_factor**k < max_t``."""
    milestones: list[int] = []
    k = 0
    while (milestone := int(round(grace_period * reduction_factor**k))) < max_t:
        if not milestones or milestone > milestones[-1]:
            milestones.append(milestone)
        k += 1
    return milestones


def continues(
    rung: Mapping[str, list[float]],
    trial_id: str,
    directions: list[str],
    reduction_factor: float,
    constrained: bool = False,
) -> bool:
    """Whether ``trial_id`` (recorded in ``rung``) is in the top ``1/reduction_factor`` of it.

    With ``constrained`` each recorded row ends with the trial's total constraint violation
    (0 = feasible): feasible trials rank first, by non-domination and crowding, infeasible
    ones after them by how much they miss the limits (Deb's rule, as NSGA-II does).
    """
    ids = list(rung)
    width = len(directions) + int(constrained)
    table = np.array([rung[i] for i in ids], dtype=float).reshape(len(ids), width)
    values = table[:, : len(directions)]
    violation = table[:, len(directions)] if constrained else np.zeros(len(ids))
    finite = np.all(np.isfinite(values), axis=1) & np.isfinite(violation)
    if not finite[ids.index(trial_id)]:
        return False
    keep = max(1, math.ceil(len(ids) / reduction_factor))
    finite_ids = [i for i, ok in zip(ids, finite) if ok]
    if len(finite_ids) <= keep:
        return True
    points, missed = values[finite], violation[finite]
    feasible = np.flatnonzero(missed <= 0)
    infeasible = np.flatnonzero(missed > 0)
    ranks = np.zeros(len(points))
    crowding = np.zeros(len(points))
    order_feasible: list[int] = []
    if len(feasible):
        keys = promotion_keys(points[feasible], directions)
        ranks[feasible], crowding[feasible] = keys
        order_feasible = [
            int(feasible[k]) for k in promotion_order(points[feasible], directions, keys)
        ]
    order_infeasible = [int(k) for k in infeasible[np.lexsort((infeasible, missed[infeasible]))]]
    order = order_feasible + order_infeasible
    position = order.index(finite_ids.index(trial_id))
    if position < keep:
        return True
    # A tie with the last trial kept (same rank and crowding, or same violation) is not a
    # reason to stop.
    me, last = order[position], order[keep - 1]
    if missed[me] > 0 or missed[last] > 0:
        return bool(missed[me] == missed[last])
    return bool(ranks[me] == ranks[last] and crowding[me] == crowding[last])


def total_violation(constraints: Mapping[str, Any], metrics: Mapping[str, Any]) -> float:
    """The sum of how much ``metrics`` miss each limit (0 = feasible; a missing metric is
    infinitely infeasible)."""
    total = 0.0
    for metric, limit in constraints.items():
        value = metrics.get(metric)
        try:
            total += max(0.0, limit.violation(float(value)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return float("inf")
    return total


class MOASHA(FIFOScheduler):
    """Multi-objective ASHA for Ray Tune.

    Args:
        objectives: metric -> ``"maximize"`` / ``"minimize"`` (the sweep's).
        max_t: epochs of a full trial.
        grace_period: epochs before the first judgement (of bracket 0).
        reduction_factor: 1/reduction_factor of each rung continues.
        brackets: bracket ``s`` starts judging at ``grace_period * reduction_factor**s``
            (Hyperband's hedge against a too-short grace period); trials are dealt to the
            brackets in turn.
        time_attr: the reported progress key (the search's ``epoch``).
        state_path: JSON file that keeps the rungs across a driver restart.
    """

    def __init__(
        self,
        objectives: Mapping[str, str],
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 2.0,
        brackets: int = 1,
        time_attr: str = M.EPOCH,
        state_path: str | Path | None = None,
        constraints: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not objectives:
            raise ValueError("MOASHA needs at least one objective")
        if reduction_factor <= 1 or grace_period < 1 or max_t < 1 or brackets < 1:
            raise ValueError(
                "MOASHA needs reduction_factor > 1 and grace_period, max_t, brackets >= 1"
            )
        self.objectives = dict(objectives)
        #: metric -> a limit with ``violation(value)`` (the sweep's ``constraints``)
        self.constraints = dict(constraints or {})
        self.reduction_factor = float(reduction_factor)
        self.time_attr = time_attr
        self.milestones = [
            rung_milestones(
                int(round(grace_period * reduction_factor**s)), reduction_factor, max_t
            )
            for s in range(brackets)
        ]
        self.state_path = None if state_path is None else str(state_path)
        self.rungs: list[dict[int, dict[str, list[float]]]] = [
            {m: {} for m in ms} for ms in self.milestones
        ]
        self.bracket_of: dict[str, int] = {}
        self.stopped: set[str] = set()
        self._loaded = False

    # -- state -------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.state_path and Path(self.state_path).is_file():
            data = json.loads(Path(self.state_path).read_text())
            for bracket, rungs in zip(self.rungs, data.get("rungs", [])):
                for milestone, rung in rungs.items():
                    bracket.setdefault(int(milestone), {}).update(
                        {
                            tid: [float("nan") if v is None else float(v) for v in vs]
                            for tid, vs in rung.items()
                        }
                    )
            self.bracket_of.update(data.get("bracket_of", {}))
            self.stopped |= set(data.get("stopped", []))

    def _save(self) -> None:
        if not self.state_path:
            return
        rungs = [
            {
                str(m): {
                    tid: [v if math.isfinite(v) else None for v in vs] for tid, vs in rung.items()
                }
                for m, rung in bracket.items()
            }
            for bracket in self.rungs
        ]
        data = {
            "objectives": self.objectives,
            "milestones": self.milestones,
            "rungs": rungs,
            "bracket_of": self.bracket_of,
            "stopped": sorted(self.stopped),
            "num_stopped": self.num_stopped,
        }
        atomic_write_text(self.state_path, json.dumps(data, indent=1) + "\n")

    @property
    def num_stopped(self) -> int:
        return len(self.stopped)

    # -- decisions ---------------------------------------------------------
    def _vector(self, result: Mapping[str, Any]) -> list[float]:
        values = []
        for metric in self.objectives:
            value: Any = result.get(metric)
            try:
                values.append(float(value))
            except (TypeError, ValueError):
                values.append(float("nan"))
        if self.constraints:  # one more column: the total violation (0 = feasible)
            values.append(total_violation(self.constraints, result))
        return values

    def record(self, trial_id: str, progress: float, result: Mapping[str, Any]) -> str:
        """Record the result at the highest rung it reached for the first time; the action."""
        self._load()
        if (
            trial_id in self.stopped
        ):  # e.g. re-reported after a driver restart: the decision stands
            return TrialScheduler.STOP
        bracket = self.bracket_of.setdefault(trial_id, len(self.bracket_of) % len(self.milestones))
        for milestone in reversed(self.milestones[bracket]):
            if progress < milestone:
                continue
            rung = self.rungs[bracket].setdefault(milestone, {})
            if trial_id in rung:
                return TrialScheduler.CONTINUE  # judged here already
            rung[trial_id] = self._vector(result)
            keep = continues(
                rung,
                trial_id,
                list(self.objectives.values()),
                self.reduction_factor,
                constrained=bool(self.constraints),
            )
            if not keep:
                self.stopped.add(trial_id)
            self._save()
            return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.time_attr not in result:
            return TrialScheduler.CONTINUE
        return self.record(trial.trial_id, float(result[self.time_attr]), result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        # A trial that ends exactly at a rung (its last epoch) is recorded there too.
        if result and self.time_attr in result:
            self.record(trial.trial_id, float(result[self.time_attr]), result)

    def debug_string(self) -> str:
        self._load()
        brackets = "; ".join(
            ", ".join(f"epoch {m}: {len(rungs.get(m, {}))}" for m in ms) or "no rungs"
            for ms, rungs in zip(self.milestones, self.rungs)
        )
        objectives = ", ".join(self.objectives)
        return f"Using MO-ASHA ({objectives}): num_stopped={self.num_stopped}; rungs {brackets}"
