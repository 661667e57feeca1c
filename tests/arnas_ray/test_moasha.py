"""MO-ASHA's promotion rule on hand-made rungs, its async decisions and its saved rungs."""

from __future__ import annotations

import json
import math

import pytest
from ray.tune.schedulers import TrialScheduler

from arnas_ray.sweep.moasha import MOASHA
from arnas_ray.sweep.moasha import continues
from arnas_ray.sweep.moasha import rung_milestones

MAX2 = ["maximize", "maximize"]


@pytest.mark.parametrize(
    ("grace", "factor", "max_t", "expected"),
    [
        (1, 2, 8, [1, 2, 4]),
        (1, 3, 10, [1, 3, 9]),
        (2, 2, 6, [2, 4]),
        (1, 1.5, 4, [1, 2, 3]),
        (5, 2, 5, []),
    ],
)
def test_rungs_sit_below_max_t(grace, factor, max_t, expected) -> None:
    assert rung_milestones(grace, factor, max_t) == expected


def test_top_half_by_rank_then_crowding_two_objectives() -> None:
    rung = {
        "a": [0.9, 0.1],
        "b": [0.1, 0.9],
        "c": [0.5, 0.5],
        "d": [0.4, 0.4],
        "e": [0.2, 0.2],
        "f": [0.3, 0.1],
    }
    kept = {t for t in rung if continues(rung, t, MAX2, 2.0)}
    # Front a, b, c (3 = ceil(6/2) places): all kept; dominated d, e, f stopped.
    assert kept == {"a", "b", "c"}
    # With a third of the rung kept (2 places) the front's extremes win on crowding distance.
    assert {t for t in rung if continues(rung, t, MAX2, 3.0)} == {"a", "b"}


def test_mixed_directions_three_objectives() -> None:
    directions = ["maximize", "minimize", "maximize"]  # clean_acc, params_m, pgd_acc
    rung = {
        "small": [0.80, 0.1, 0.30],
        "big": [0.90, 2.0, 0.50],
        "worse": [0.79, 2.5, 0.29],
        "mid": [0.85, 1.0, 0.40],
    }
    # Ranks: small, big, mid non-dominated; worse is dominated by big (and by mid).
    assert not continues(rung, "worse", directions, 2.0)
    flipped = ["minimize", "maximize", "minimize"]  # the same numbers, every preference reversed
    assert continues(rung, "worse", flipped, 2.0)


def test_ties_with_the_last_kept_trial_continue() -> None:
    # Two incomparable points both have infinite crowding distance: neither is worse.
    rung = {"a": [0.9, 0.1], "b": [0.1, 0.9]}
    assert continues(rung, "a", MAX2, 2.0) and continues(rung, "b", MAX2, 2.0)
    # Exact duplicates tie as well.
    rung = {"a": [0.5, 0.5], "b": [0.5, 0.5], "c": [0.1, 0.1], "d": [0.2, 0.0]}
    assert {t for t in rung if continues(rung, t, MAX2, 4.0)} == {"a", "b"}


def test_missing_objectives_rank_last() -> None:
    rung = {"a": [0.2, 0.2], "b": [math.nan, 0.9]}
    assert continues(rung, "a", MAX2, 2.0) and not continues(rung, "b", MAX2, 2.0)


class _Trial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def _result(epoch: int, clean: float, pgd: float) -> dict:
    return {"epoch": epoch, "clean_acc": clean, "pgd_acc": pgd}


def test_asynchronous_decisions_and_saved_rungs_survive_a_restart(tmp_path) -> None:
    state = tmp_path / "moasha.json"
    objectives = {"clean_acc": "maximize", "pgd_acc": "maximize"}
    scheduler = MOASHA(objectives, max_t=4, grace_period=1, reduction_factor=2, state_path=state)
    act = scheduler.on_trial_result
    assert (
        act(None, _Trial("a"), _result(1, 0.5, 0.5)) == TrialScheduler.CONTINUE
    )  # first at the rung
    assert (
        act(None, _Trial("b"), _result(1, 0.4, 0.4)) == TrialScheduler.STOP
    )  # dominated, 1 of 2 kept
    assert (
        act(None, _Trial("a"), _result(1, 0.5, 0.5)) == TrialScheduler.CONTINUE
    )  # judged once per rung
    assert (
        act(None, _Trial("c"), _result(1, 0.9, 0.1)) == TrialScheduler.CONTINUE
    )  # new front extreme
    assert (
        act(None, _Trial("a"), _result(2, 0.6, 0.6)) == TrialScheduler.CONTINUE
    )  # first at rung 2
    assert scheduler.num_stopped == 1
    saved = json.loads(state.read_text())
    assert saved["milestones"] == [[1, 2]] and set(saved["rungs"][0]["1"]) == {"a", "b", "c"}
    # A new driver (what --resume unpickles: the scheduler as it was built) reads the rungs back.
    again = MOASHA(objectives, max_t=4, grace_period=1, reduction_factor=2, state_path=state)
    assert again.on_trial_result(None, _Trial("d"), _result(1, 0.3, 0.3)) == TrialScheduler.STOP
    assert (
        again.on_trial_result(None, _Trial("c"), _result(2, 0.95, 0.2)) == TrialScheduler.CONTINUE
    )
    assert again.num_stopped == 2
    assert "rungs epoch 1: 4, epoch 2: 2" in again.debug_string()


def test_brackets_start_later_and_share_trials_in_turn(tmp_path) -> None:
    scheduler = MOASHA(
        {"clean_acc": "maximize"},
        max_t=16,
        grace_period=1,
        reduction_factor=2,
        brackets=3,
        state_path=tmp_path / "m.json",
    )
    assert scheduler.milestones == [[1, 2, 4, 8], [2, 4, 8], [4, 8]]
    for k, trial in enumerate("abcdef"):  # dealt to brackets 0, 1, 2, 0, 1, 2
        scheduler.on_trial_result(None, _Trial(trial), {"epoch": 1, "clean_acc": 0.1 * k})
    assert scheduler.bracket_of == {"a": 0, "b": 1, "c": 2, "d": 0, "e": 1, "f": 2}
    # Only bracket 0 judges at epoch 1: "a" first, then "d" (better) both continue.
    assert (
        set(scheduler.rungs[0][1]) == {"a", "d"}
        and not scheduler.rungs[1][2]
        and not scheduler.stopped
    )
    assert (
        scheduler.on_trial_result(None, _Trial("b"), {"epoch": 2, "clean_acc": 0.9})
        == TrialScheduler.CONTINUE
    )
    assert (
        scheduler.on_trial_result(None, _Trial("e"), {"epoch": 2, "clean_acc": 0.1})
        == TrialScheduler.STOP
    )
    again = MOASHA({"clean_acc": "maximize"}, max_t=16, brackets=3, state_path=tmp_path / "m.json")
    assert (
        again.on_trial_result(None, _Trial("g"), {"epoch": 1, "clean_acc": 0.0})
        == TrialScheduler.CONTINUE
    )
    assert again.bracket_of["g"] == 0 and again.stopped == {"e"}


def test_results_without_progress_are_ignored() -> None:
    scheduler = MOASHA({"clean_acc": "maximize"}, max_t=4)
    assert (
        scheduler.on_trial_result(None, _Trial("a"), {"clean_acc": 0.1}) == TrialScheduler.CONTINUE
    )
    with pytest.raises(ValueError, match="reduction_factor > 1"):
        MOASHA({"clean_acc": "maximize"}, max_t=4, reduction_factor=1.0)


def test_epoch_budget_counts_each_trials_epochs_once() -> None:
    from arnas_ray.sweep.run import EpochBudget

    budget = EpochBudget(5)
    for trial, epoch in (
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("a", 2),
        ("b", 2),
    ):  # "a" 2 twice: its final result
        budget(trial, {"epoch": epoch})
    assert budget.spent == 4 and not budget.stop_all()
    budget("c", {"epoch": 1})
    assert budget.stop_all()
