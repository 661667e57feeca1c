"""End-to-end sweeps on tiny trials: consistency of Tune, the Optuna study and the files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from arnas_ray import metrics as M
from arnas_ray.search import split_run_config
from arnas_ray.sweep import SweepConfig, make_sampler, validate_sweep
from search_spaces import ConfigError

FIXED = dict(
    dataset="digits", image_size=8, data_limit=120, val_limit=16, device="cpu", epochs=2,
    batch_size=8, steps_per_epoch=2, attack_steps=1, search_attack_steps=1, val_attack_steps=1,
    layers=3, init_channels=2, nodes=1, params_layers=5, params_channels=4,
)  # fmt: skip
SPACE = {
    "regularization_coefficient": {"type": "loguniform", "low": 0.01, "high": 10.0},
    "arch_mode": {"type": "choice", "values": ["mgda", "weighted"]},
    "natural_weight": {"type": "uniform", "low": 0.1, "high": 1.0, "when": {"arch_mode": "weighted"}},
    "robust_width": {"type": "choice", "values": [0.5, 2.0]},
}


def _write_config(tmp_path: Path, **changes) -> Path:
    data = {
        "name": "test", "out": str(tmp_path / "run"), "trials": 3, "max_concurrent": 2,
        "sampler": "nsga2", "sampler_options": {"population_size": 2}, "fixed": FIXED,
        "search_space": SPACE, "report": False, "trial_timeout_s": 300, **changes,
    }  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _sweep(args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "arnas_ray.sweep", "--quiet", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})}, **kw)  # fmt: skip


def _non_dominated(frame: pd.DataFrame, objectives: dict[str, str]) -> set[int]:
    signs = {m: 1 if d == "maximize" else -1 for m, d in objectives.items()}
    points = {int(r.optuna_trial): [signs[m] * getattr(r, m) for m in objectives] for r in frame.itertuples()}
    front = set()
    for i, p in points.items():
        dominated = any(all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p))
                        for j, q in points.items() if j != i)  # fmt: skip
        if not dominated:
            front.add(i)
    return front


def _check_consistent(run: Path, trials: int, epochs: int = FIXED["epochs"]) -> pd.DataFrame:
    frame = pd.read_parquet(run / "trials.parquet")
    assert len(frame) == trials
    assert frame["optuna_trial"].is_unique
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{run / 'study.db'}")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    assert study.metric_names == [M.CLEAN_ACC, M.PGD_ACC]
    states = {t.number: t.state for t in study.get_trials()}
    assert optuna.trial.TrialState.RUNNING not in states.values()
    finished = frame[frame["status"] == "FINISHED"]
    for row in frame.itertuples():
        expected = optuna.trial.TrialState.COMPLETE if row.status == "FINISHED" else None
        if expected is not None:
            assert states[row.optuna_trial] == expected
    completed = {n for n, s in states.items() if s == optuna.trial.TrialState.COMPLETE}
    assert completed == set(finished["optuna_trial"].astype(int))
    for row in finished.itertuples():
        assert 0.0 <= row.clean_acc <= 1.0 and 0.0 <= row.pgd_acc <= 1.0
        assert row.genotype and row.epochs_done == epochs
    pareto = json.loads((run / "pareto.json").read_text())
    assert {t["optuna_trial"] for t in pareto["trials"]} == _non_dominated(
        finished, {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize"})  # fmt: skip
    return frame


@pytest.mark.slow
def test_end_to_end_with_an_injected_failure_retried_from_checkpoint(tmp_path) -> None:
    marker = tmp_path / "failed-once"
    done = _sweep(["--config", str(_write_config(tmp_path))], env={"ARNAS_TEST_FAIL_ONCE": str(marker)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.exists(), "the injected failure did not happen"
    frame = _check_consistent(tmp_path / "run", trials=3)
    assert (frame["status"] == "FINISHED").all()
    assert "Pareto front" in done.stdout
    # Resumed from the checkpoint, not restarted: every trial reported each epoch once, in order.
    for path in frame["path"]:
        epochs = [json.loads(line)[M.EPOCH] for line in (Path(path) / "result.json").read_text().splitlines()]
        assert epochs == list(range(1, FIXED["epochs"] + 1)), (path, epochs)


@pytest.mark.slow
def test_killed_sweep_resumes_with_every_trial_counted_once(tmp_path) -> None:
    config = _write_config(tmp_path, trials=3, max_concurrent=1, fixed={**FIXED, "epochs": 3})
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "arnas_ray.sweep", "--quiet", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(run.glob("tune/*/checkpoint_*")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray processes
    proc.wait()
    assert not (run / "trials.parquet").exists()
    done = _sweep(["--config", str(config), "--resume"])
    assert done.returncode == 0, done.stderr[-3000:]
    frame = _check_consistent(run, trials=3, epochs=3)
    assert (frame["status"] == "FINISHED").all()
    again = _sweep(["--config", str(config)])
    assert again.returncode == 2 and "--resume" in again.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trails": 3}, "unknown key 'trails' \\(did you mean 'trials'\\?\\)"),
        ({"trials": "many"}, "'trials' Input should be a valid integer"),
        ({"search_space": {}}, "search_space is empty"),
        ({"search_space": {"lamda": {"type": "uniform", "low": 0, "high": 1}}}, "did you mean 'lr'|not a run-config key"),
        ({"search_space": {"robust_width": {"type": "uniform", "low": 0.5, "high": 9.0}}}, "value 9.0"),
        ({"search_space": {"arch_lr": {"type": "loguniform", "low": 1e-3, "high": 1e-4}}}, "must be below"),
        ({"fixed": {**FIXED, "epoch": 2}}, "did you mean 'epochs'"),
        ({"objectives": {"clean_accuracy": "maximize"}}, "did you mean 'clean_acc'"),
        ({"sampler": "nsga"}, "unknown sampler 'nsga'"),
        ({"sampler_options": {"populaton_size": 2}}, "did you mean 'population_size'"),
        ({"resources": {"cpu": 0}}, "resources.cpu"),
        ({"resources": {"cpu": 1, "gpu": 1}}, "resources.gpu > 0 but fixed.device is 'cpu'"),
    ],
)
def test_bad_sweep_configs_fail_before_ray(tmp_path, changes, message) -> None:
    data = yaml.safe_load(_write_config(tmp_path, **changes).read_text())
    with pytest.raises(ConfigError, match=message):
        validate_sweep(SweepConfig.from_dict(data))


def test_cli_bad_config_one_line_and_impossible_resources(tmp_path) -> None:
    bad = _sweep(["--config", str(_write_config(tmp_path)), "--set", "trails=3"])
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "did you mean 'trials'" in bad.stderr and not (tmp_path / "run" / "tune").exists()
    huge = _sweep(["--config", str(_write_config(tmp_path)), "--set", "resources.cpu=64"])
    assert huge.returncode == 2 and "fit no node" in huge.stderr, huge.stderr[-2000:]
    errors = [line for line in huge.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in huge.stderr
    assert not (tmp_path / "run" / "tune").exists()


@pytest.mark.parametrize("name", ["nsga2", "nsga3", "tpe", "random", "gp", "qmc", "NSGAIISampler"])
def test_every_named_sampler_builds(name) -> None:
    assert isinstance(make_sampler(name, {}, seed=0), optuna.samplers.BaseSampler)


def test_default_config_is_valid() -> None:
    from arnas_ray.sweep import DEFAULT_CONFIG

    config = SweepConfig.from_dict(yaml.safe_load(DEFAULT_CONFIG.read_text()))
    validate_sweep(config)
    assert config.objectives == {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize", M.PARAMS_M: "minimize"}
    fixed, _ = split_run_config(config.fixed)
    # The recipe that learns (RESULTS.md: default job) departs from the paper on purpose.
    assert (fixed.image_size, fixed.warmup_epochs, fixed.eps_warmup_epochs) == (8, 2, 3)
    paper = SweepConfig.from_dict(yaml.safe_load((DEFAULT_CONFIG.parent / "sweep-paper.yaml").read_text()))
    validate_sweep(paper)


@pytest.mark.slow
def test_asha_stopped_trials_are_pruned_and_off_the_front(tmp_path) -> None:
    config = _write_config(tmp_path, trials=4, max_concurrent=2, fixed={**FIXED, "epochs": 3},
                           scheduler={"type": "asha", "metric": "pgd_acc", "grace_period": 1,
                                      "reduction_factor": 2})  # fmt: skip
    done = _sweep(["--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    frame = pd.read_parquet(run / "trials.parquet")
    assert len(frame) == 4 and set(frame["status"]) <= {"FINISHED", "STOPPED_EARLY"}
    stopped = frame[frame["status"] == "STOPPED_EARLY"]
    assert (stopped["optuna_state"] == "PRUNED").all()
    assert (stopped["epochs_done"] < 3).all()
    pareto = {t["optuna_trial"] for t in json.loads((run / "pareto.json").read_text())["trials"]}
    assert not pareto & set(stopped["optuna_trial"])
    finished = frame[frame["status"] == "FINISHED"]
    assert pareto == _non_dominated(finished, {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize"})


@pytest.mark.slow
def test_trials_past_their_time_limit_error_and_the_sweep_goes_on(tmp_path) -> None:
    # 10 ms: the first search step (several PGD passes) always takes longer.
    config = _write_config(tmp_path, trials=2, max_failures=0, trial_timeout_s=0.01)
    done = _sweep(["--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]
    frame = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    assert list(frame["status"]) == ["ERROR", "ERROR"]
    assert (frame["optuna_state"] == "FAIL").all()
    assert frame["error"].str.contains("trial_timeout_s").all(), frame["error"].tolist()
    assert json.loads((tmp_path / "run" / "pareto.json").read_text())["trials"] == []


def test_trials_get_an_absolute_data_root(tmp_path, monkeypatch) -> None:
    """Ray runs trials in its own working directory: a relative data_root must not reach them."""
    from arnas_ray.sweep import _absolute_paths

    monkeypatch.chdir(tmp_path)
    assert _absolute_paths({}) == {"data_root": str(tmp_path / "data")}
    assert _absolute_paths({"data_root": "x/y", "epochs": 2}) == {"data_root": str(tmp_path / "x" / "y"), "epochs": 2}
