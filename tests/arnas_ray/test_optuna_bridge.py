"""The Optuna side of a sweep, without Ray running: study states follow the real outcome,
sampling follows ``when``, and pickles of the storage hold no password."""

from __future__ import annotations

import math
import pickle

import optuna
import pytest

from arnas_ray.sweep.config import ParamSpec
from arnas_ray.sweep.optuna_bridge import RUN_ID_ATTR
from arnas_ray.sweep.optuna_bridge import ConsistentOptunaSearch
from arnas_ray.sweep.optuna_bridge import DefineByRun
from arnas_ray.sweep.optuna_bridge import fail_running
from arnas_ray.sweep.optuna_bridge import open_storage
from arnas_ray.sweep.trainable import SEARCH_FINISHED

SPACE = {
    "arch_mode": ParamSpec(type="choice", values=["mgda", "weighted"]),
    "natural_weight": ParamSpec(type="uniform", low=0.1, high=1.0, when={"arch_mode": "weighted"}),
}


@pytest.fixture
def searcher(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    return ConsistentOptunaSearch(
        space=DefineByRun(SPACE),
        metric=["clean_acc", "pgd_acc"],
        mode=["max", "max"],
        sampler=optuna.samplers.RandomSampler(seed=0),
        storage=storage,
        study_name="s",
        run_id="run-a",
    )


def _state(searcher, trial_id):
    return searcher._ot_study.get_trials()[searcher._ot_trials[trial_id].number].state


@pytest.mark.parametrize(
    ("result", "error", "state"),
    [
        (
            {SEARCH_FINISHED: True, "clean_acc": 0.9, "pgd_acc": 0.4},
            False,
            optuna.trial.TrialState.COMPLETE,
        ),
        (
            {SEARCH_FINISHED: True, "clean_acc": math.nan, "pgd_acc": 0.4},
            False,
            optuna.trial.TrialState.FAIL,
        ),
        (
            {SEARCH_FINISHED: True, "clean_acc": 0.9, "pgd_acc": math.inf},
            False,
            optuna.trial.TrialState.FAIL,
        ),
        (
            {SEARCH_FINISHED: False, "clean_acc": 0.9, "pgd_acc": 0.4},
            False,
            optuna.trial.TrialState.PRUNED,
        ),
        (
            {SEARCH_FINISHED: True, "clean_acc": 0.9, "pgd_acc": 0.4},
            True,
            optuna.trial.TrialState.FAIL,
        ),
    ],
)
def test_study_state_follows_the_trials_outcome(searcher, result, error, state) -> None:
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", result=result, error=error)
    assert _state(searcher, "t1") == state
    searcher.on_trial_complete("t1", result=result, error=error)  # told once only
    assert _state(searcher, "t1") == state


def test_trials_carry_the_run_id_and_reconciliation_touches_only_this_run(searcher) -> None:
    searcher.suggest("mine")
    study = searcher._ot_study
    other = study.ask()
    other.set_user_attr(RUN_ID_ATTR, "run-b")  # another driver's trial, still running
    assert study.get_trials()[0].user_attrs[RUN_ID_ATTR] == "run-a"
    assert fail_running(study, "run-a") == [0]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]


def test_when_conditions_sample_only_their_branch(searcher) -> None:
    seen = []
    for k in range(12):
        config = searcher.suggest(f"t{k}")
        params = searcher._ot_trials[f"t{k}"].params
        seen.append(params["arch_mode"])
        assert ("natural_weight" in params) == (params["arch_mode"] == "weighted"), params
        assert "optuna_trial" in config
    assert set(seen) == {"mgda", "weighted"}


def test_pickled_storage_has_the_password_masked(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    storage.url = "sqlite://user:hunter2@/" + str(
        tmp_path / "study.db"
    )  # as a server URL would carry one
    assert b"hunter2" not in pickle.dumps(storage)
