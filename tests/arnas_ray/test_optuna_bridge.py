"""The Optuna side of a sweep, without Ray running: study states follow the real outcome,
sampling follows ``when``, and the searcher's pickle and saved state hold no password
and no storage, yet a restored searcher settles the trials asked before its restart."""

from __future__ import annotations

import math
import pickle

import optuna
import pytest

from arnas_common.errors import ArnasError
from arnas_ray.sweep.config import STORAGE_ENV
from arnas_ray.sweep.config import Limit
from arnas_ray.sweep.config import ParamSpec
from arnas_ray.sweep.optuna_bridge import RUN_ID_ATTR
from arnas_ray.sweep.optuna_bridge import DefineByRun
from arnas_ray.sweep.optuna_bridge import fail_running
from arnas_ray.sweep.optuna_bridge import open_storage
from arnas_ray.sweep.samplers import SamplerSpec
from arnas_ray.sweep.searcher import StudySearcher
from arnas_ray.sweep.searcher import storage_password_env
from arnas_ray.sweep.searcher import tune_trial_numbers
from arnas_ray.sweep.trainable import SEARCH_FINISHED

SPACE = {
    "arch_mode": ParamSpec(type="choice", values=["mgda", "weighted"]),
    "natural_weight": ParamSpec(type="uniform", low=0.1, high=1.0, when={"arch_mode": "weighted"}),
}


OBJECTIVES = {"clean_acc": "maximize", "pgd_acc": "maximize"}


def _searcher(url: str, **kw) -> StudySearcher:
    storage = open_storage(url) if "***" not in url else None
    if storage is not None:
        optuna.create_study(
            storage=storage,
            study_name="s",
            directions=list(OBJECTIVES.values()),
            load_if_exists=True,
        )
    return StudySearcher(
        space=DefineByRun(SPACE),
        objectives=OBJECTIVES,
        study_name="s",
        storage_url=url,
        sampler=SamplerSpec(  # TPE reads constraints; random sampling does not
            "tpe" if kw.get("constraints") else "random",
            seed=0,
            constraints=tuple(kw.get("constraints", ())),
        ),
        run_id="run-a",
        storage=storage,
        **kw,
    )


@pytest.fixture
def searcher(tmp_path):
    return _searcher(f"sqlite:///{tmp_path / 'study.db'}")


def _state(searcher, trial_id):
    return searcher.study.get_trials()[searcher.numbers[trial_id]].state


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
    study = searcher.study
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
        params = searcher.study.get_trials()[searcher.numbers[f"t{k}"]].params
        seen.append(params["arch_mode"])
        assert ("natural_weight" in params) == (params["arch_mode"] == "weighted"), params
        assert config == params  # the sampled keys only: no trial number rides along
    assert set(seen) == {"mgda", "weighted"}
    # The Tune-id -> number map is in the study, for this run only.
    assert tune_trial_numbers(searcher.study, "run-a") == {f"t{k}": k for k in range(12)}
    assert tune_trial_numbers(searcher.study, "run-b") == {}


def test_restored_searcher_settles_trials_asked_before_the_restart(tmp_path) -> None:
    """Pickled (Tune's tuner.pkl) and saved (its experiment checkpoint), then restored as a
    resumed driver does: the study is reopened, the map read back, constraints and tell
    reach the trials asked before; a trial settled before the restart is not told again."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = _searcher(url, constraints={"params_m": Limit(max=1.0)})
    first.suggest("a")
    first.suggest("b")
    first.on_trial_complete("b", {SEARCH_FINISHED: False, "clean_acc": 0.5, "pgd_acc": 0.2})
    state_file = tmp_path / "searcher-state-x.json"
    first.save(str(state_file))
    blob = pickle.dumps(first)
    assert b"sqlite" in blob and b"Storage" not in blob  # the URL, no storage object
    again = pickle.loads(blob)
    again.restore(str(state_file))
    finished = {SEARCH_FINISHED: True, "clean_acc": 0.9, "pgd_acc": 0.4, "params_m": 3.0}
    again.on_trial_result("a", finished)
    again.on_trial_complete("a", finished)
    again.on_trial_complete("b", finished)  # PRUNED before the restart: stays PRUNED
    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [t.state for t in trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    ]
    assert trials[0].values == [0.9, 0.4] and trials[0].constraints == {"params_m": 2.0}


def test_searcher_pickle_and_state_hold_no_password(tmp_path, monkeypatch) -> None:
    db = tmp_path / "study.db"
    url = f"sqlite:///{db}"
    secret = "postgresql+psycopg://user:hunter2@localhost/db"
    searcher = _searcher(url)
    searcher.storage_url = secret  # as a server URL would carry one
    searcher.save(str(tmp_path / "state.json"))
    blob = pickle.dumps(searcher)
    assert b"hunter2" not in blob and "hunter2" not in (tmp_path / "state.json").read_text()
    unpickled = pickle.loads(blob)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    with pytest.raises(ArnasError, match=f"needs its password.*{STORAGE_ENV}"):
        unpickled.study  # noqa: B018  # reopening needs the password given again
    with storage_password_env(secret):
        assert unpickled._real_url() == secret
    assert STORAGE_ENV not in __import__("os").environ  # given only while it is needed


@pytest.mark.parametrize(
    "text",
    [
        "{",
        '{"format": "other"}',
        '{"format": "arnas-study-searcher/1", "study_name": "t", "run_id": "run-a"}',
        '{"format": "arnas-study-searcher/1", "study_name": "s", "run_id": "run-a", '
        '"trials": {"a": "0"}, "constrained": []}',
    ],
)
def test_a_damaged_searcher_state_is_one_clear_error(searcher, tmp_path, text) -> None:
    path = tmp_path / "searcher-state-x.json"
    path.write_text(text)
    with pytest.raises(ArnasError, match="--resume: the searcher state .* start a new --out"):
        searcher.restore(str(path))


def test_a_driver_that_loses_the_table_creation_race_tries_again(tmp_path, monkeypatch) -> None:
    """Two drivers opening one fresh SQLite file at once: the loser sees "table ... already
    exists" (measured: 1 in 8 rounds of four processes); it opens the storage on a retry,
    while any other database error is one line at once."""
    import sqlalchemy.exc

    from arnas_ray.sweep import optuna_bridge

    real = optuna_bridge.RDBStorage
    calls: list[str] = []

    def racing(url, **kw):
        calls.append(url)
        if len(calls) == 1:
            orig = Exception("table studies already exists")
            raise sqlalchemy.exc.OperationalError("CREATE TABLE studies", {}, orig)
        return real(url, **kw)

    monkeypatch.setattr(optuna_bridge, "RDBStorage", racing)
    monkeypatch.setattr(optuna_bridge.time, "sleep", lambda s: None)
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert isinstance(open_storage(url), real) and len(calls) == 2

    def broken(url, **kw):
        calls.append(url)
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(optuna_bridge, "RDBStorage", broken)
    calls.clear()
    with pytest.raises(ArnasError, match="cannot open storage .*disk I/O error"):
        open_storage(url)
    assert len(calls) == 1
