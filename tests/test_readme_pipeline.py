"""README's path from a sweep to final scores on its report, as a user types it: relative
paths, from a working directory that is neither the repository nor the run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from arnas_ray.results import SweepResult
from tests.helpers import TINY_TRAIN
from tests.helpers import write_sweep_config


def _run(cwd, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_sweep_train_score_report_with_relative_paths(tmp_path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    config = write_sweep_config(cwd, out="runs/sweep", trials=2, report=True)
    data = yaml.safe_load(config.read_text())
    data["fixed"]["data_root"] = "data"  # relative, as README's configs have it
    config.write_text(yaml.safe_dump(data))
    (cwd / "train.yaml").write_text(
        yaml.safe_dump({**TINY_TRAIN, "epochs": 1, "steps_per_epoch": 2, "data_root": "data"})
    )
    _run(cwd, "arnas_ray.sweep", "--config", "sweep.yaml", "--quiet")
    run = cwd / "runs" / "sweep"
    assert SweepResult.read(run).front()
    trained = _run(
        cwd, "analysis.train", "--sweep", "runs/sweep", "--config", "train.yaml", "--random", "1"
    )
    jobs = [job["name"] for job in json.loads((run / "final" / "jobs.json").read_text())["jobs"]]
    # One line per trained network, not Tune's tables.
    assert (
        "trained ARNAS: clean_acc" in trained.stdout
        and f"done {len(jobs)}/{len(jobs)}" in trained.stdout
    )
    assert "Trial status" not in trained.stdout
    assert sorted(p.parent.name for p in (run / "final").glob("*/best.pt")) == sorted(jobs)
    _run(
        cwd,
        "analysis.score",
        "--sweep",
        "runs/sweep",
        "--n-examples",
        "16",
        "--attacks",
        "clean",
        "pgd20",
    )
    assert sorted(p.stem for p in (run / "scores").glob("*.json")) == sorted(jobs)
    _run(cwd, "analysis.report", "runs/sweep")
    page = (run / "report.html").read_text()
    assert "No final scores yet" not in page and "Pareto genotypes beat random ones" in page
    assert not list(
        tmp_path.rglob("working_dirs")
    )  # nothing landed in Ray's trial working directories
