"""Experiment tracking by name: TensorBoard, MLflow and W&B callbacks on a real tiny sweep,
each read back with its own reader; bad names and options refused before Ray starts."""

from __future__ import annotations

import pytest

from arnas_common import metrics as M
from arnas_common.errors import ConfigError
from arnas_ray.results import SweepResult
from arnas_ray.sweep.config import load_sweep_config
from tests.helpers import write_sweep_config


def _sweep(tmp_path, **changes):
    from arnas_ray.sweep.run import run_sweep

    config = load_sweep_config(write_sweep_config(tmp_path, **{"trials": 2, **changes}), [], None)
    run_sweep(config, verbose=0)
    return tmp_path / "run", SweepResult.read(tmp_path / "run")


@pytest.mark.slow
def test_tensorboard_mlflow_and_wandb_record_every_trial(tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow", reason="pip install -e '.[tracking]'")
    pytest.importorskip("wandb", reason="pip install -e '.[tracking]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for key in ("WANDB_API_KEY", "WANDB_MODE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    run, result = _sweep(tmp_path, callbacks=["tensorboard", "mlflow", "wandb"])
    trials = {t.trial_id: t for t in result.trials}
    assert len(trials) == 2 and all(t.epochs_done >= 1 for t in trials.values())

    # TensorBoard: one event file per trial, one pgd_acc scalar per reported epoch
    for trial in trials.values():
        (events,) = (run / "tune").glob(f"*{trial.trial_id}*/events.out.tfevents.*")
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        scalars = accumulator.Scalars(f"ray/tune/{M.PGD_ACC}")
        assert len(scalars) == trial.epochs_done
        assert scalars[-1].value == pytest.approx(trial.value(M.PGD_ACC))

    # MLflow: its store in the run directory, one run per trial with the sampled keys
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{run / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["test"])
    assert len(runs) == 2
    for _, row in runs.iterrows():
        trial = next(t for t in trials.values() if t.trial_id in row["tags.trial_name"])
        assert row[f"metrics.{M.PGD_ACC}"] == pytest.approx(trial.value(M.PGD_ACC))
        for key in trial.sampled:
            assert f"params.{key}" in row.index

    # W&B: offline runs under the run directory, one per trial, nothing sent
    offline = sorted((run / "wandb").rglob("offline-run-*"))
    assert len(offline) == 2 and all(any(d.glob("*.wandb")) for d in offline)
    assert list((run / "wandb" / "cache").rglob("core-debug-*.log"))  # not ~/.cache/wandb


@pytest.mark.slow
def test_without_callbacks_no_tracking_files(tmp_path) -> None:
    run, result = _sweep(tmp_path, trials=1)
    assert len(result.trials) == 1
    assert not list((run / "tune").rglob("events.out.tfevents.*"))
    assert not (run / "mlflow.db").exists() and not (run / "wandb").exists()
    assert list((run / "tune").glob("*/progress.csv"))  # csv and json: always on


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"callbacks": ["tensorbaord"]}, "unknown callback 'tensorbaord' (did you mean"),
        (
            {"callbacks": ["wandb"], "callback_options": {"wandb": {"api_key": "x"}}},
            "credentials never go into a sweep file",
        ),
        (
            {"callbacks": ["mlflow"], "callback_options": {"mlflow": {"tracking_ur": "x"}}},
            "callback_options.mlflow.tracking_ur: not allowed",
        ),
        ({"callback_options": {"mlflow": {}}}, "'mlflow' is not in callbacks"),
        (
            {"callbacks": ["wandb"], "callback_options": {"wandb": {"mode": "loud"}}},
            "use one of offline, online, disabled",
        ),
    ],
)
def test_bad_tracking_keys_are_refused_before_ray(tmp_path, changes, expected) -> None:
    if "wandb" in changes.get("callbacks", ()):
        pytest.importorskip("wandb", reason="pip install -e '.[tracking]'")
    if "mlflow" in changes.get("callbacks", ()):
        pytest.importorskip("mlflow", reason="pip install -e '.[tracking]'")
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_sweep_config(write_sweep_config(tmp_path, **changes), [], None)
