"""End-to-end sweeps on tiny trials: consistency of Tune, the Optuna study and the files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from arnas_common import metrics as M
from arnas_common.rayenv import is_loopback
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialStatus
from arnas_ray.sweep import SweepConfig
from arnas_ray.sweep import make_sampler
from arnas_ray.sweep import validate_sweep
from search_spaces import ConfigError
from tests.helpers import TINY_SWEEP_FIXED
from tests.helpers import brute_force_front
from tests.helpers import run_sweep_cli
from tests.helpers import start_sweep_cli
from tests.helpers import write_sweep_config


def _check_consistent(
    run: Path,
    trials: int,
    epochs: int = TINY_SWEEP_FIXED["epochs"],
    objectives: dict[str, str] | None = None,
) -> SweepResult:
    """The study, the SweepResult and its files agree; the front is the brute-force one."""
    objectives = objectives or {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize"}
    result = SweepResult.read(run)
    assert len(result.trials) == trials and result.objectives == objectives
    numbers = [t.number for t in result.trials]
    assert len(set(numbers)) == trials and None not in numbers
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{run / 'study.db'}")
    assert study.metric_names == list(result.objectives)
    states = {t.number: t.state for t in study.get_trials()}
    assert optuna.trial.TrialState.RUNNING not in states.values()
    finished = [t for t in result.trials if t.status is TrialStatus.FINISHED]
    completed = {n for n, s in states.items() if s == optuna.trial.TrialState.COMPLETE}
    assert completed == {t.number for t in finished}
    for trial in finished:
        assert trial.genotype is not None and trial.epochs_done == epochs
        assert [row[M.EPOCH] for row in trial.history] == list(range(1, epochs + 1))
        assert trial.config["epochs"] == epochs and set(trial.sampled) <= set(trial.config)
    points = [[t.value(m) for m in objectives] for t in finished]
    front = {finished[i].number for i in brute_force_front(points, list(objectives.values()))}
    assert {t.number for t in result.front()} == front
    assert {t["number"] for t in json.loads((run / "pareto.json").read_text())["trials"]} == front
    return result


@pytest.mark.slow
def test_end_to_end_with_an_injected_failure_retried_from_checkpoint(tmp_path) -> None:
    marker = tmp_path / "failed-once"
    done = run_sweep_cli(
        ["--config", str(write_sweep_config(tmp_path))], env={"ARNAS_TEST_FAIL_ONCE": str(marker)}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.exists(), "the injected failure did not happen"
    # Resumed from the checkpoint, not restarted: every trial reported each epoch once, in order
    # (checked on each trial's history by _check_consistent).
    result = _check_consistent(tmp_path / "run", trials=3)
    assert all(t.status is TrialStatus.FINISHED for t in result.trials)
    assert "Pareto front" in done.stdout
    # Final alpha weights per cell type in use, one row per edge.
    for trial in result.trials:
        assert set(trial.alphas) <= {"accurate", "reduce", "robust"} and trial.alphas
        assert all(abs(sum(row) - 1.0) < 1e-4 for rows in trial.alphas.values() for row in rows)
    # Ray's token file (written 0644 by Ray 2.60) is left readable by its owner only.
    token = Path("~/.ray/auth_token").expanduser()
    if token.is_file():
        assert token.stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_killed_sweep_resumes_with_every_trial_counted_once(tmp_path) -> None:
    config = write_sweep_config(
        tmp_path, trials=3, max_concurrent=1, fixed={**TINY_SWEEP_FIXED, "epochs": 3}
    )
    run = tmp_path / "run"
    proc = start_sweep_cli(["--config", str(config)])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(run.glob("tune/*/checkpoint_*")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray processes
    proc.wait()
    assert not (run / "result.json").exists()
    changed = run_sweep_cli(
        ["--config", str(config), "--resume", "--set", "trials=4", "--set", "fixed.lr=0.5"]
    )
    assert changed.returncode == 2 and "differs from the one" in changed.stderr, changed.stderr[
        -2000:
    ]
    assert "fixed.lr, trials" in changed.stderr
    done = run_sweep_cli(["--config", str(config), "--resume"])
    assert done.returncode == 0, done.stderr[-3000:]
    result = _check_consistent(run, trials=3, epochs=3)
    assert all(t.status is TrialStatus.FINISHED for t in result.trials)
    again = run_sweep_cli(["--config", str(config)])
    assert again.returncode == 2 and "--resume" in again.stderr


def _tree(pid: int) -> set[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [pid]
    while todo:
        tree.add(todo[-1])
        todo.extend(children.get(todo.pop(), []))
    return tree


def _listening(pids: set[int]) -> list[tuple[str, str]]:
    """(process name, local address) of every TCP listener ``ss -ltnp`` shows for ``pids``."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        users = re.findall(r'\("([^"]+)",pid=(\d+),', line)
        local = line.split()[3]
        found += [(name, local) for name, pid in users if int(pid) in pids]
    return found


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (Debian's iproute2)")
def test_local_sweep_listens_on_loopback_only(tmp_path) -> None:
    """Ray's GCS server, raylet, workers and agents of a local sweep bind 127.0.0.1 only."""
    config = write_sweep_config(tmp_path, trials=1, fixed={**TINY_SWEEP_FIXED, "epochs": 1})
    proc = subprocess.Popen(
        [sys.executable, "-m", "arnas_ray.sweep", "--quiet", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    seen: set[tuple[str, str]] = set()
    while proc.poll() is None:
        seen.update(_listening(_tree(proc.pid)))
        time.sleep(0.3)
    assert proc.returncode == 0, proc.stderr.read()[-3000:]
    names = {name for name, _ in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # the check saw Ray's servers up
    exposed = {(name, local) for name, local in seen if not is_loopback(local.rpartition(":")[0])}
    assert not exposed, f"listening beyond loopback: {sorted(exposed)}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trails": 3}, "unknown key 'trails' \\(did you mean 'trials'\\?\\)"),
        ({"trials": "many"}, "'trials' Input should be a valid integer"),
        ({"search_space": {}}, "search_space is empty"),
        (
            {"search_space": {"lamda": {"type": "uniform", "low": 0, "high": 1}}},
            "did you mean 'lr'|not a run-config key",
        ),
        (
            {"search_space": {"robust_width": {"type": "uniform", "low": 0.5, "high": 9.0}}},
            "value 9.0",
        ),
        (
            {"search_space": {"arch_lr": {"type": "loguniform", "low": 1e-3, "high": 1e-4}}},
            "must be below",
        ),
        ({"fixed": {**TINY_SWEEP_FIXED, "epoch": 2}}, "did you mean 'epochs'"),
        ({"objectives": {"clean_accuracy": "maximize"}}, "did you mean 'clean_acc'"),
        ({"sampler": "nsga"}, "unknown sampler 'nsga'"),
        ({"sampler_options": {"populaton_size": 2}}, "did you mean 'population_size'"),
        ({"resources": {"cpu": 0}}, "resources.cpu"),
        ({"resources": {"cpu": 1, "gpu": 1}}, "resources.gpu > 0 but fixed.device is 'cpu'"),
    ],
)
def test_bad_sweep_configs_fail_before_ray(tmp_path, changes, message) -> None:
    data = yaml.safe_load(write_sweep_config(tmp_path, **changes).read_text())
    with pytest.raises(ConfigError, match=message):
        validate_sweep(SweepConfig.from_dict(data))


def test_cli_bad_config_one_line_and_impossible_resources(tmp_path) -> None:
    bad = run_sweep_cli(["--config", str(write_sweep_config(tmp_path)), "--set", "trails=3"])
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "did you mean 'trials'" in bad.stderr and not (tmp_path / "run" / "tune").exists()
    huge = run_sweep_cli(
        ["--config", str(write_sweep_config(tmp_path)), "--set", "resources.cpu=64"]
    )
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
    assert config.objectives == {
        M.CLEAN_ACC: "maximize",
        M.PGD_ACC: "maximize",
        M.PARAMS_M: "minimize",
    }
    fixed = config.fixed.search
    # The recipe that learns (RESULTS.md: default job) departs from the paper on purpose.
    assert (fixed.image_size, fixed.warmup_epochs, fixed.eps_warmup_epochs) == (8, 2, 3)
    paper = SweepConfig.from_dict(
        yaml.safe_load((DEFAULT_CONFIG.parent / "sweep-paper.yaml").read_text())
    )
    validate_sweep(paper)


@pytest.mark.slow
def test_asha_stopped_trials_are_pruned_and_off_the_front(tmp_path) -> None:
    config = write_sweep_config(
        tmp_path,
        trials=4,
        max_concurrent=2,
        fixed={**TINY_SWEEP_FIXED, "epochs": 3},
        scheduler={"type": "asha", "metric": "pgd_acc", "grace_period": 1, "reduction_factor": 2},
    )
    done = run_sweep_cli(["--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]
    result = SweepResult.read(tmp_path / "run")
    assert len(result.trials) == 4 and {t.status for t in result.trials} <= {
        TrialStatus.FINISHED,
        TrialStatus.STOPPED_EARLY,
    }
    stopped = [t for t in result.trials if t.status is TrialStatus.STOPPED_EARLY]
    assert all(t.optuna_state == "PRUNED" and t.epochs_done < 3 for t in stopped)
    assert not {t.number for t in result.front()} & {t.number for t in stopped}


@pytest.mark.slow
def test_trials_past_their_time_limit_error_and_the_sweep_goes_on(tmp_path) -> None:
    # 10 ms: the first search step (several PGD passes) always takes longer.
    config = write_sweep_config(tmp_path, trials=2, max_failures=0, trial_timeout_s=0.01)
    done = run_sweep_cli(["--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]
    result = SweepResult.read(tmp_path / "run")
    assert [t.status for t in result.trials] == [TrialStatus.ERROR, TrialStatus.ERROR]
    assert all(t.optuna_state == "FAIL" and "trial_timeout_s" in t.error for t in result.trials)
    assert json.loads((tmp_path / "run" / "pareto.json").read_text())["trials"] == []


def test_trials_get_an_absolute_data_root(tmp_path, monkeypatch) -> None:
    """Ray runs trials in its own working directory: a relative data_root must not reach them."""
    from arnas_ray.search.run_config import RunConfig
    from arnas_ray.sweep.collect import absolute_paths

    monkeypatch.chdir(tmp_path)
    assert absolute_paths(RunConfig.from_flat({})) == {"data_root": str(tmp_path / "data")}
    assert absolute_paths(RunConfig.from_flat({"data_root": "x/y", "epochs": 2})) == {
        "data_root": str(tmp_path / "x" / "y"),
        "epochs": 2,
    }


THREE = {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize", M.PARAMS_M: "minimize"}
MOASHA = {"type": "moasha", "grace_period": 1, "reduction_factor": 2}


def _check_moasha(run: Path, result: SweepResult) -> dict:
    state = json.loads((run / "moasha.json").read_text())
    rungs = state["rungs"][0]  # one bracket
    stopped = [t for t in result.trials if t.status is TrialStatus.STOPPED_EARLY]
    assert state["num_stopped"] == len(stopped)
    for trial in stopped:  # stopped at a rung, PRUNED in the study, never on the front
        assert trial.optuna_state == "PRUNED" and trial.trial_id in rungs[str(trial.epochs_done)]
    assert not {t.trial_id for t in stopped} & {t.trial_id for t in result.front()}
    assert set(rungs["1"]) == {t.trial_id for t in result.trials}  # everyone was judged at epoch 1
    return state


@pytest.mark.slow
def test_moasha_sweep_of_three_objectives_to_the_report(tmp_path) -> None:
    config = write_sweep_config(
        tmp_path,
        trials=4,
        fixed={**TINY_SWEEP_FIXED, "epochs": 3},
        objectives=THREE,
        scheduler=MOASHA,
        report=True,
    )
    done = run_sweep_cli(["--config", str(config)], quiet=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # The console: one line per trial epoch with every objective and the front size, no tables.
    progress = [line for line in done.stdout.splitlines() if " epoch 1/3 " in line]
    assert len(progress) == 4 and all("params_m" in line and "front" in line for line in progress)
    assert (
        "Configuration for experiment" not in done.stdout
        and "Token authentication" not in done.stderr
    )
    run = tmp_path / "run"
    result = _check_consistent(run, trials=4, epochs=3, objectives=THREE)
    _check_moasha(run, result)
    csv = pd.read_csv(run / "pareto.csv")
    assert sorted(csv["trial_id"].astype(str)) == sorted(t.trial_id for t in result.front())
    page = (run / "report.html").read_text()
    assert "Pareto front in three objectives" in page and "epochs spent by all trials" in page


@pytest.mark.slow
def test_killed_moasha_sweep_resumes_with_its_rungs(tmp_path) -> None:
    config = write_sweep_config(
        tmp_path,
        trials=3,
        max_concurrent=1,
        fixed={**TINY_SWEEP_FIXED, "epochs": 3},
        scheduler=MOASHA,
    )
    run = tmp_path / "run"
    proc = start_sweep_cli(["--config", str(config)])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (run / "moasha.json").exists():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # a trial sits at rung 1
    proc.wait()
    before = json.loads((run / "moasha.json").read_text())["rungs"][0]
    assert before["1"]
    done = run_sweep_cli(["--config", str(config), "--resume"])
    assert done.returncode == 0, done.stderr[-3000:]
    result = _check_consistent(run, trials=3, epochs=3)
    after = _check_moasha(run, result)["rungs"][0]
    for milestone, rung in before.items():  # nothing judged before the kill was forgotten
        assert {k: v for k, v in after[milestone].items() if k in rung} == rung
