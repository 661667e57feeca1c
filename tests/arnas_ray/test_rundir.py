"""Damaged or foreign Tune state in a run directory is refused within seconds, by name."""

from __future__ import annotations

import pickle

import pytest

from arnas_common.errors import ArnasError
from arnas_ray.sweep.rundir import EXPERIMENT
from arnas_ray.sweep.rundir import check_experiment_files


def _experiment(tmp_path):
    experiment = tmp_path / EXPERIMENT
    experiment.mkdir()
    (experiment / "tuner.pkl").write_bytes(pickle.dumps({"ok": 1}))
    return experiment


def test_an_intact_experiment_passes(tmp_path) -> None:
    experiment = _experiment(tmp_path)
    (experiment / "searcher-state-2026.json").write_text('{"format": "x"}')
    (experiment / "experiment_state-2026.json").write_text("{}")
    check_experiment_files(tmp_path)


def test_a_run_of_the_pickling_searcher_is_refused_with_what_to_do(tmp_path) -> None:
    experiment = _experiment(tmp_path)
    (experiment / "searcher-state-2026.pkl").write_bytes(pickle.dumps({"old": 1}))
    with pytest.raises(ArnasError, match="earlier arnas-ray.*start a new --out"):
        check_experiment_files(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("searcher-state-2026.json", b'{"format": "arnas', "searcher-state-2026.json' is not"),
        ("experiment_state-2026.json", b'{"trials": [', "experiment_state-2026.json' is not"),
        ("tuner.pkl", pickle.dumps({"ok": 1})[:-3], "tuner.pkl' is cut short"),
    ],
)
def test_cut_short_state_files_are_named(tmp_path, name, content, message) -> None:
    experiment = _experiment(tmp_path)
    (experiment / name).write_bytes(content)
    with pytest.raises(ArnasError, match=message):
        check_experiment_files(tmp_path)
