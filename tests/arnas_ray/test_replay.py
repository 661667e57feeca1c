"""Schedulers by replay: a replayed scheduler decides as it does in a real Ray Tune run of
the same curves, deterministically, on a simulated clock that charges each epoch its
recorded seconds; tables are read from real run directories and checked when loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arnas_common import metrics as M
from arnas_common.errors import ArnasError
from arnas_ray.results import SweepResult
from arnas_ray.sweep.config import SchedulerSpec
from arnas_ray.sweep.replay import Curve
from arnas_ray.sweep.replay import ReplayTable
from arnas_ray.sweep.replay import replay

TABLES = Path(__file__).resolve().parents[2] / "benchmarks" / "replay_tables"
ASHA = SchedulerSpec(type="asha", grace_period=1, reduction_factor=2)
MOASHA = SchedulerSpec(type="moasha", grace_period=1, reduction_factor=2)


@pytest.fixture(scope="module")
def digits() -> ReplayTable:
    """Curves of the default job (two real sweeps of configs/sweep-tiny.yaml)."""
    path = TABLES / "digits-6.json"
    return ReplayTable.from_json(path.read_text(), str(path))


def _table(seconds: list[list[float]], pgd: list[list[float]]) -> ReplayTable:
    return ReplayTable(
        name="hand-made",
        objectives={M.PGD_ACC: "maximize"},
        reference_point={M.PGD_ACC: 0.0},
        epochs=len(seconds[0]),
        curves=tuple(
            Curve(f"run/t{i}", tuple({M.PGD_ACC: p} for p in ps), tuple(ss))
            for i, (ss, ps) in enumerate(zip(seconds, pgd))
        ),
    )


def test_the_simulated_clock_charges_each_epoch_its_recorded_seconds() -> None:
    """Two workers, three trials: the third starts when the first worker frees up."""
    table = _table([[1.0, 2.0], [5.0, 5.0], [0.5, 0.5]], [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    run = replay(table, SchedulerSpec(), workers=2, order=[0, 1, 2])
    assert [(f.trial, f.time_s, f.epochs_spent) for f in run.finishes] == [
        (0, 3.0, 2),  # trial 0: epochs end at 1 and 3
        (2, 4.0, 4),  # trial 2 starts at 3 on worker 0: epochs end at 3.5 and 4
        (1, 10.0, 6),  # trial 1: epochs end at 5 and 10
    ]
    assert run.time_s == 10.0 and run.epochs_run == (2, 2, 2)


def test_a_budget_stops_every_trial_at_once_like_the_sweeps() -> None:
    table = _table([[1.0, 1.0, 1.0]] * 2, [[0.1, 0.2, 0.3]] * 2)
    run = replay(table, SchedulerSpec(), workers=2, budget_epochs=5, order=[0, 1])
    assert run.epochs_spent == 5 and len(run.finishes) == 0 + 1 * (run.epochs_run[0] == 3)
    assert sum(run.epochs_run) == 5


@pytest.mark.parametrize("spec", [SchedulerSpec(), ASHA, MOASHA], ids=lambda s: s.type)
def test_replays_are_deterministic(digits, spec) -> None:
    runs = [replay(digits, spec, workers=8, budget_epochs=300, seed=3) for _ in range(2)]
    assert runs[0] == runs[1]
    assert replay(digits, spec, workers=8, budget_epochs=300, seed=4).curves != runs[0].curves


def test_a_replay_takes_a_scheduler_object_as_well_as_a_spec(digits) -> None:
    """Another library's scheduler, wrapped as a Ray Tune one, replays alike."""
    from arnas_ray.sweep.schedulers import build_scheduler

    built = build_scheduler(MOASHA, digits.objectives, digits.epochs)
    by_spec = replay(digits, MOASHA, workers=4, budget_epochs=120, seed=1)
    assert replay(digits, built, workers=4, budget_epochs=120, seed=1) == by_spec


def test_early_stopping_stops_trials_in_a_replay(digits) -> None:
    for spec in (ASHA, MOASHA):
        run = replay(digits, spec, workers=4, budget_epochs=240, seed=0)
        stopped = [e for e in run.epochs_run if e < digits.epochs]
        assert len(stopped) > len(run.epochs_run) // 3, spec.type


def _tune_epochs(table: ReplayTable, spec: SchedulerSpec, order: list[int]) -> list[int]:
    """Epochs each trial ran in a real Tune run of ``order``'s curves, one at a time."""
    from ray import tune

    from arnas_ray.sweep.schedulers import build_scheduler

    def trainable(config):
        curve = table.curves[config["curve"]]
        for epoch, (metrics, seconds) in enumerate(zip(curve.metrics, curve.seconds), 1):
            tune.report({M.EPOCH: epoch, **metrics, M.EPOCH_TIME_S: seconds})

    positions = list(range(len(order)))
    tuner = tune.Tuner(
        trainable,
        param_space={
            "position": tune.grid_search(positions),
            "curve": tune.sample_from(lambda spec: order[spec.config["position"]]),
        },
        tune_config=tune.TuneConfig(
            scheduler=build_scheduler(spec, table.objectives, table.epochs),
            max_concurrent_trials=1,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(verbose=0, storage_path=str(Path.cwd() / "tune")),
    )
    grid = tuner.fit()
    epochs = {r.config["position"]: int(r.metrics[M.EPOCH]) for r in grid}
    return [epochs[p] for p in positions]


@pytest.mark.slow
def test_replayed_decisions_equal_a_real_tune_run(digits, tmp_path, monkeypatch) -> None:
    """The same 10 curves through Ray Tune (its controller calling the scheduler) and
    through the replay: every trial runs the same number of epochs, under each scheduler."""
    import ray

    monkeypatch.chdir(tmp_path)
    order = [3, 7, 1, 12, 0, 9, 15, 4, 7, 2]
    # Fashion-MNIST's recipe leaves its 5 warm-up epochs unvalidated (objectives None).
    path = TABLES / "fmnist-7.json"
    fmnist = ReplayTable.from_json(path.read_text(), str(path))
    late = {"grace_period": fmnist.first_validated_epoch}
    cases = [(digits, spec, order) for spec in (SchedulerSpec(), ASHA, MOASHA)] + [
        (fmnist, spec.model_copy(update=late), [1, 4, 2, 6, 0, 3]) for spec in (ASHA, MOASHA)
    ]
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        for table, spec, curves in cases:
            replayed = replay(table, spec, workers=1, order=curves).epochs_run
            assert list(replayed) == _tune_epochs(table, spec, curves), (table.name, spec.type)
            if spec.type != "none":
                assert min(replayed) < table.epochs  # something was stopped
    finally:
        ray.shutdown()


def test_a_replay_refuses_rungs_on_unvalidated_epochs() -> None:
    table = _table([[1.0, 1.0, 1.0]], [[None, 0.2, 0.3]])  # type: ignore[list-item]
    with pytest.raises(ArnasError, match="from epoch 2"):
        replay(table, ASHA, workers=1, trials=1)
    assert replay(table, ASHA.model_copy(update={"grace_period": 2}), workers=1, trials=2)


def test_a_table_round_trips_and_a_damaged_one_is_one_error(digits, tmp_path) -> None:
    assert ReplayTable.from_json(digits.to_json(), "x") == digits
    data = json.loads(digits.to_json())
    data["curves"][2]["seconds"] = data["curves"][2]["seconds"][:-1]
    with pytest.raises(ArnasError, match="does not have 6 epochs"):
        ReplayTable.from_json(json.dumps(data), "t.json")
    data = json.loads(digits.to_json())
    data["curves"][0]["seconds"][0] = -1
    with pytest.raises(ArnasError, match="non-positive epoch time"):
        ReplayTable.from_json(json.dumps(data), "t.json")
    for text in ("{", "[]", json.dumps({"format": "arnas-replay-table/1"})):
        with pytest.raises(ArnasError, match="t.json"):
            ReplayTable.from_json(text, "t.json")


def test_a_table_is_built_from_a_run_directorys_finished_trials(digits) -> None:
    """The shipped table holds what its run directories' histories say (provenance kept)."""
    assert digits.provenance and sum(p["trials"] for p in digits.provenance) == len(digits.curves)
    curve = digits.curves[0]
    assert len(curve.metrics) == digits.epochs == 6
    assert set(curve.metrics[0]) == set(digits.objectives)


def test_a_table_from_a_real_sweep(tmp_path) -> None:
    from tests.helpers import run_sweep_cli
    from tests.helpers import write_sweep_config

    run = tmp_path / "run"
    config = write_sweep_config(tmp_path, out=str(run), trials=2, max_concurrent=2)
    assert run_sweep_cli(["--config", str(config)]).returncode == 0
    result = SweepResult.read(run)
    table = ReplayTable.from_results("t", [(str(run), result)])
    finished = result.finished()
    assert len(table.curves) == len(finished) >= 1
    for curve, trial in zip(table.curves, finished):
        assert curve.source == f"{result.run_id}/{trial.trial_id}"
        assert [m[M.PGD_ACC] for m in curve.metrics] == [h[M.PGD_ACC] for h in trial.history]
        assert curve.final[M.CLEAN_ACC] == trial.metrics[M.CLEAN_ACC]
    with pytest.raises(ArnasError, match="other objectives"):
        other = SweepResult(**{**result.__dict__, "objectives": {M.PGD_ACC: "maximize"}})
        ReplayTable.from_results("t", [(str(run), result), ("b", other)])


def test_the_replay_benchmarks_smoke_test_runs(tmp_path) -> None:
    import subprocess
    import sys

    script = TABLES.parent / "scheduler_replay.py"
    out, page = tmp_path / "replay.json", tmp_path / "curves.html"
    done = subprocess.run(
        [sys.executable, str(script), "--smoke-test", "--json", str(out), "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    ((name, table),) = report["tables"].items()
    arms = table["4"]
    assert {"fifo", "asha", "moasha", "moasha_late"} <= set(arms)
    epochs = report["meta"][name]["epochs"]
    assert arms["fifo"]["epochs_spent"]["median"] == 40 * epochs  # FIFO runs every epoch
    assert arms["moasha"]["trials_started"]["median"] > 40  # early stopping buys trials
    for arm in arms.values():  # the curves: hypervolume never falls, on either axis
        for key in ("hv_at_epochs", "hv_at_time"):
            medians = [point["median"] for point in arm[key]]
            assert len(medians) == 41 and medians == sorted(medians)
    # FIFO's curve ends at its final hypervolume; the page draws every arm offline
    assert arms["fifo"]["hv_at_epochs"][-1] == arms["fifo"]["final_hv"]
    text = page.read_text()
    assert "<script src" not in text and all(f'"name":"{arm}"' in text for arm in arms)
