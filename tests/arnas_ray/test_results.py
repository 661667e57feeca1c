"""The run-directory contract: SweepResult round trips, one front, legacy directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arnas_common.errors import ArnasError
from arnas_ray.results import SCHEMA_VERSION
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialRecord
from arnas_ray.results import TrialStatus
from search_spaces import genotypes
from tests.helpers import brute_force_front
from tests.helpers import write_sweep_run

LEGACY = Path(__file__).parents[1] / "assets" / "sweep_run"
THREE = {"clean_acc": "maximize", "pgd_acc": "maximize", "params_m": "minimize"}


def _three_objective_rows(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = [
        {
            "trial_id": f"t{i}",
            "clean_acc": float(a),
            "pgd_acc": float(b),
            "params_m": float(c),
            "sampled": {"regularization_coefficient": float(c)},
        }
        for i, (a, b, c) in enumerate(rng.random((12, 3)))
    ]
    rows[3]["status"] = "ERROR"
    rows[4]["status"] = "STOPPED_EARLY"
    rows[5]["pgd_acc"] = float("nan")  # finished without the metric: not a front candidate
    return rows


@pytest.mark.parametrize("seed", range(3))
def test_one_front_over_all_objectives_in_every_file(tmp_path, seed) -> None:
    rows = _three_objective_rows(seed)
    run = write_sweep_run(tmp_path / "run", THREE, rows, fixed={"robust_width": 2.0})
    result = SweepResult.read(run)
    candidates = [
        r for r in rows if r.get("status", "FINISHED") == "FINISHED" and not np.isnan(r["pgd_acc"])
    ]
    points = [[r[m] for m in THREE] for r in candidates]
    expected = sorted(
        candidates[i]["trial_id"] for i in brute_force_front(points, list(THREE.values()))
    )
    assert sorted(t.trial_id for t in result.front()) == expected
    pareto = json.loads((run / "pareto.json").read_text())
    assert sorted(t["trial_id"] for t in pareto["trials"]) == expected
    assert pareto["objectives"] == THREE
    # The front's full run config: fixed keys are carried with the sampled ones.
    assert all(
        t["config"]["robust_width"] == 2.0 and "regularization_coefficient" in t["config"]
        for t in pareto["trials"]
    )
    frame = pd.read_parquet(run / "trials.parquet")
    assert list(frame["trial_id"]) == [r["trial_id"] for r in rows]
    assert "regularization_coefficient" in frame and not any(c.startswith("hp_") for c in frame)


def test_round_trip_keeps_every_field(tmp_path) -> None:
    trial = TrialRecord(
        trial_id="abc",
        status=TrialStatus.STOPPED_EARLY,
        config={"epochs": 3, "arch_mode": "weighted"},
        sampled=("arch_mode",),
        metrics={"clean_acc": 0.5, "pgd_acc": float("nan")},
        genotype=genotypes.get("ARNAS"),
        number=7,
        optuna_state="PRUNED",
        epochs_done=2,
        time_total_s=12.5,
        error=None,
        history=({"epoch": 1, "clean_acc": 0.4}, {"epoch": 2, "clean_acc": 0.5}),
    )
    result = SweepResult(
        name="x", objectives={"clean_acc": "maximize"}, trials=(trial,), run_id="r1"
    )
    result.write(tmp_path)
    back = SweepResult.read(tmp_path)
    assert (
        back.run_id == "r1"
        and back.schema == SCHEMA_VERSION
        and back.objectives == result.objectives
    )
    (read,) = back.trials
    assert (
        read.genotype == trial.genotype
        and read.history == trial.history
        and read.sampled == trial.sampled
    )
    assert (
        read.status is TrialStatus.STOPPED_EARLY
        and read.config == trial.config
        and read.number == 7
    )
    assert read.value("clean_acc") == 0.5 and np.isnan(read.value("pgd_acc"))
    assert "NaN" not in (tmp_path / "result.json").read_text()  # strict JSON: NaN written as null


def test_legacy_run_directory_is_read_through_the_compatibility_path(tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run)
    result = SweepResult.read(run)
    assert result.name == "fixture-sweep" and result.objectives == {
        "clean_acc": "maximize",
        "pgd_acc": "maximize",
    }
    assert [t.status for t in result.trials].count(TrialStatus.ERROR) == 1
    t1 = result.trial("t0001")
    assert t1.config["arch_mode"] == "weighted" and t1.config["robust_width"] == 1.0
    assert "natural_weight" in t1.sampled and "natural_weight" not in result.trial("t0000").sampled
    assert sorted(t.trial_id for t in result.front()) == ["t0001", "t0002", "t0003", "t0007"]


def test_unreadable_results_are_one_clear_error(tmp_path) -> None:
    with pytest.raises(ArnasError, match="has no result.json"):
        SweepResult.read(tmp_path)
    (tmp_path / "result.json").write_text('{"schema": 2, "name": "x", "obj')
    with pytest.raises(ArnasError, match="not valid JSON"):
        SweepResult.read(tmp_path)
    (tmp_path / "result.json").write_text('{"schema": 99}')
    with pytest.raises(ArnasError, match="schema 99"):
        SweepResult.read(tmp_path)
    (tmp_path / "result.json").unlink()
    (tmp_path / "trials.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(ArnasError, match="cannot be read"):
        SweepResult.read(tmp_path)
