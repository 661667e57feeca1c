"""One writer per run directory: a second analysis.train --sweep or analysis.score --sweep on
the same run directory stops with one line while the first holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from analysis.trainer import TrainConfig
from analysis.trainer import Trainer
from arnas_common.io import exclusive_lock
from search_spaces import genotypes
from tests.helpers import TINY_TRAIN
from tests.helpers import write_sweep_run

ROOT = Path(__file__).parents[2]
TWO = {"clean_acc": "maximize", "pgd_acc": "maximize"}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_second_final_training_of_a_run_directory_stops(tmp_path) -> None:
    run = write_sweep_run(
        tmp_path / "run", TWO, [{"trial_id": "a", "clean_acc": 0.9, "pgd_acc": 0.5}]
    )
    with exclusive_lock(
        run / "final", "analysis.train --sweep"
    ):  # the first writer, still at work
        before = _files(run)
        done = _run(
            ["-m", "analysis.train", "--sweep", "run", "--set", "dataset=digits"], tmp_path
        )
        assert _files(run) == before
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "another analysis.train --sweep is writing into" in lines[0]


def test_second_scoring_of_a_run_directory_stops(tmp_path) -> None:
    run = write_sweep_run(
        tmp_path / "run", TWO, [{"trial_id": "a", "clean_acc": 0.9, "pgd_acc": 0.5}]
    )
    Trainer(TrainConfig(**{**TINY_TRAIN, "epochs": 1}), genotypes.get("ARNAS"), "trial_a").run(
        run / "final" / "trial_a", progress=False
    )
    with exclusive_lock(run / "scores", "analysis.score --sweep"):
        before = _files(run)
        done = _run(
            ["-m", "analysis.score", "--sweep", "run", "--n-examples", "4", "--attacks", "clean"],
            tmp_path,
        )
        assert _files(run) == before
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "another analysis.score --sweep is writing into" in lines[0]
    # Once the first writer is gone the same command runs.
    again = _run(
        ["-m", "analysis.score", "--sweep", "run", "--n-examples", "4", "--attacks", "clean"],
        tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run / "scores" / "trial_a.json").is_file()
