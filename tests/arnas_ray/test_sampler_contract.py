"""The sampler contract: every ``sampler:`` value through a 2- and a 3-objective tiny sweep
with PRUNED trials (MO-ASHA) and, where the sampler takes one, a constraint; the study,
result.json and the front agree. Then warm starts and enqueued trials end to end."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from arnas_common import metrics as M
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialStatus
from arnas_ray.sweep.config import load_sweep_config
from arnas_ray.sweep.samplers import SAMPLERS
from arnas_ray.sweep.samplers import supports_constraints
from tests.helpers import TINY_SWEEP_FIXED
from tests.helpers import brute_force_front
from tests.helpers import run_sweep_cli
from tests.helpers import write_sweep_config

TWO = {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize"}
THREE = {**TWO, M.PARAMS_M: "minimize"}
MOASHA = {"type": "moasha", "grace_period": 1, "reduction_factor": 2}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module's sweeps (run_sweep leaves a caller's Ray running)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _sweep(config_path, *extra: str) -> None:
    """The sweep of ``config_path`` in this process (the module's Ray session)."""
    from arnas_ray.sweep.config import load_sweep_config as load
    from arnas_ray.sweep.run import run_sweep

    warm = Path(extra[1]) if extra[:1] == ("--warm-start",) else None
    run_sweep(load(config_path, [], None), verbose=0, warm_start=warm)


def _study(run, name: str = "test") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run / 'study.db'}")


@pytest.mark.slow
@pytest.mark.parametrize("objectives", [TWO, THREE], ids=["2-objective", "3-objective"])
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_with_pruned_trials_and_a_constraint(
    ray_session, tmp_path, sampler, objectives
) -> None:
    options = {"population_size": 2} if sampler in ("nsga2", "nsga3") else {}
    constrained = supports_constraints(sampler)
    # MO-ASHA stops trials at its rung, and the epoch budget (7 of the 10 the trials could run)
    # stops whatever still runs: PRUNED trials are certain, whatever the objectives' ranks.
    changes = {
        "trials": 5,
        "sampler": sampler,
        "sampler_options": options,
        "objectives": objectives,
        "scheduler": MOASHA,
        "budget_epochs": 7,
        "fixed": {**TINY_SWEEP_FIXED, "epochs": 2},
    }
    if constrained:  # a limit well inside the space's range of network sizes
        bound = load_sweep_config(write_sweep_config(tmp_path, **changes), [], None).reference()
        limit = 0.5 * bound[M.PARAMS_M] if M.PARAMS_M in bound else 0.005
        changes["constraints"] = {M.PARAMS_M: {"max": limit}}
    report = sampler == "nsga2" and len(objectives) == 3  # one report of a constrained sweep
    config = write_sweep_config(tmp_path, **changes, report=report)
    _sweep(config)
    run = tmp_path / "run"
    if report:
        from arnas_ray.sweep.run import write_report

        write_report(run)
    result = SweepResult.read(run)
    study = _study(run)
    states = {t.number: t.state for t in study.get_trials()}
    assert optuna.trial.TrialState.RUNNING not in states.values()
    numbers = [t.number for t in result.trials]
    assert len(numbers) == len(set(numbers)) and set(numbers) <= set(states)  # each once
    # an Optuna trial missing from result.json was suggested but never started: FAIL
    assert {states[n] for n in set(states) - set(numbers)} <= {optuna.trial.TrialState.FAIL}
    for trial in result.trials:
        expected = {
            TrialStatus.FINISHED: optuna.trial.TrialState.COMPLETE,
            TrialStatus.STOPPED_EARLY: optuna.trial.TrialState.PRUNED,
            TrialStatus.ERROR: optuna.trial.TrialState.FAIL,
        }[trial.status]
        assert states[trial.number] == expected, (
            trial.trial_id,
            trial.status,
            states[trial.number],
        )
    assert any(s == optuna.trial.TrialState.PRUNED for s in states.values()), "MO-ASHA pruned none"
    if constrained:
        limit = changes["constraints"][M.PARAMS_M]["max"]
        for trial in result.finished():
            assert trial.feasible is (trial.value(M.PARAMS_M) <= limit)
            told = study.trials[trial.number].constraints
            assert told[M.PARAMS_M] == pytest.approx(trial.value(M.PARAMS_M) - limit)
    candidates = [t for t in result.finished() if t.feasible is not False]
    points = [[t.value(m) for m in objectives] for t in candidates]
    front = {candidates[i].number for i in brute_force_front(points, list(objectives.values()))}
    assert {t.number for t in result.front()} == front
    assert {t["number"] for t in json.loads((run / "pareto.json").read_text())["trials"]} == front
    assert result.reference_point is not None and set(result.reference_point) == set(objectives)
    if report:
        page = (run / "report.html").read_text()
        assert "Constraints: params_m &lt;= " in page and "Hypervolume reference point: " in page


@pytest.mark.slow
def test_warm_start_and_enqueued_trials(tmp_path) -> None:
    for part in "abc":
        (tmp_path / part).mkdir()
    first = write_sweep_config(tmp_path / "a", trials=4)
    done = run_sweep_cli(["--config", str(first)])
    assert done.returncode == 0, done.stderr[-3000:]
    earlier = SweepResult.read(tmp_path / "a" / "run")
    enqueued = {
        "arch_mode": "weighted",
        "natural_weight": 0.42,
        "regularization_coefficient": 0.5,
        "robust_width": 2.0,
    }
    second = write_sweep_config(tmp_path / "b", trials=2, enqueue=[enqueued])
    done = run_sweep_cli(["--config", str(second), "--warm-start", str(tmp_path / "a" / "run")])
    assert done.returncode == 0, done.stderr[-3000:]
    study = _study(tmp_path / "b" / "run")
    warm = [t for t in study.trials if "arnas_warm_start" in t.user_attrs]
    assert len(warm) == len(earlier.finished()) and all(t.state.name == "COMPLETE" for t in warm)
    assert sorted(tuple(t.values) for t in warm) == sorted(
        tuple(t.value(m) for m in earlier.objectives) for t in earlier.finished()
    )
    result = SweepResult.read(tmp_path / "b" / "run")
    first_new = min(result.trials, key=lambda t: t.number)
    assert first_new.number == len(warm)  # the warm-started trials came first
    assert {k: first_new.config.get(k) for k in enqueued} == enqueued  # then the enqueued one
    # NSGA-II counted the warm-started trials as its first generations: the parents of the new
    # trials' generation are warm-started trials (Optuna's public GA-sampler API).
    sampler = optuna.samplers.NSGAIISampler(population_size=2, seed=0)
    generation = sampler.get_trial_generation(study, study.trials[first_new.number])
    parents = sampler.get_parent_population(study, generation)
    assert parents and {t.number for t in parents} <= {t.number for t in warm}
    # a warm start from a sweep with other objectives is one line
    other = write_sweep_config(tmp_path / "c", objectives=THREE)
    bad = run_sweep_cli(["--config", str(other), "--warm-start", str(tmp_path / "a" / "run")])
    assert (
        bad.returncode == 2
        and "warm-start only from a sweep with the same objectives" in bad.stderr
    )
