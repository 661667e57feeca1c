from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from analysis.checkpoint import load_network
from analysis.fidelity import build_search_help_data
from analysis.train import TrainConfig
from analysis.train import Trainer
from arnas_common import metrics as M
from search_spaces import genotypes
from tests.helpers import TINY_TRAIN
from tests.helpers import write_sweep_run

TINY = TINY_TRAIN


def test_train_selects_on_validation_and_resumes(tmp_path) -> None:
    out = tmp_path / "run"
    straight = Trainer(TrainConfig(**TINY), genotypes.get("DARTS_V2"), "darts")
    straight.run(out / "a", progress=False)
    first = Trainer(TrainConfig(**{**TINY, "epochs": 2}), genotypes.get("DARTS_V2"), "darts")
    first.epoch = 0
    # Interrupt after one epoch: run with a one-epoch budget by stepping manually.
    first.train_epoch()
    state = first.state(full=True)
    (out / "b").mkdir(parents=True)
    torch.save(state, out / "b" / "last.pt")
    resumed = Trainer(TrainConfig(**TINY), genotypes.get("DARTS_V2"), "darts")
    resumed.run(out / "b", progress=False, resume=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != M.EPOCH_TIME_S} for r in rows]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history)
    model, meta = load_network(out / "a" / "best.pt")
    assert meta["dataset"] == "digits" and meta["name"] == "darts"
    best_epoch = max(
        range(len(straight.history)),
        key=lambda i: (straight.history[i][M.PGD_ACC], straight.history[i][M.CLEAN_ACC]),
    )
    assert meta["epoch"] == best_epoch + 1


def test_score_cli_prints_the_attack_table(tmp_path) -> None:
    trainer = Trainer(TrainConfig(**{**TINY, "epochs": 1}), genotypes.get("ARNAS"), "arnas")
    best = trainer.run(tmp_path, progress=False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.score",
            "--checkpoint",
            str(best),
            "--n-examples",
            "16",
            "--autoattack-budget",
            "apgd.n_iter=3",
            "apgd_targeted.n_iter=3",
            "apgd_targeted.n_target_classes=1",
            "fab.n_iter=3",
            "fab.n_target_classes=1",
            "square.n_queries=20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for metric in (M.CLEAN_ACC, M.FGSM_ACC, M.PGD20_ACC, M.PGD100_ACC, M.AUTOATTACK_ACC):
        assert metric in done.stdout
    # Progress: each attack announced; AutoAttack with its time bound, then its own messages.
    assert "  pgd100 ..." in done.stdout
    assert "autoattack (apgd-ce, apgd-t, fab-t, square) on 16 examples: at most ~" in done.stdout
    assert "    initial accuracy: " in done.stdout  # AutoAttack's own log, shown while it runs
    record = json.loads((tmp_path / "scores.json").read_text())
    assert record["n_examples"] == 16 and record["name"] == "arnas"


@pytest.mark.slow
def test_sweep_pareto_genotypes_train_score_and_report(tmp_path, monkeypatch) -> None:
    """analysis.train --sweep (Ray Tune trials; relative paths from another working
    directory), then analysis.score --sweep into RUN_DIR/scores and the report's section."""
    rows = [
        {"trial_id": "t0001", "clean_acc": 0.9, "pgd_acc": 0.5, "genotype": "PDARTS"},
        {
            "trial_id": "t0002",
            "clean_acc": 0.8,
            "pgd_acc": 0.4,
            "genotype": "DARTS_V1",
            "sampled": {"robust_width": 0.5},
        },
    ]
    run = write_sweep_run(
        tmp_path / "run",
        {"clean_acc": "maximize", "pgd_acc": "maximize"},
        rows,
        fixed={"robust_width": 2.0},
    )
    config = tmp_path / "train.yaml"
    config.write_text(
        "\n".join(f"{k}: {v}" for k, v in {**TINY, "epochs": 1, "steps_per_epoch": 2}.items())
    )
    monkeypatch.chdir(tmp_path)
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.train",
            "--sweep",
            "run",
            "--config",
            "train.yaml",
            "--random",
            "1",
            "--also",
            "1",
            "--published-seeds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    names = sorted(p.parent.name for p in (run / "final").glob("*/best.pt"))
    assert names == ["ARNAS", "DARTS_V2", "random_0", "trial_t0001", "trial_t0002"]
    # A fixed robust_width reaches final training, a sampled one wins over it, baselines use the
    # config's.
    assert (
        load_network(run / "final" / "trial_t0001" / "best.pt")[1]["network"]["robust_width"]
        == 2.0
    )
    assert (
        load_network(run / "final" / "trial_t0002" / "best.pt")[1]["network"]["robust_width"]
        == 0.5
    )
    assert load_network(run / "final" / "ARNAS" / "best.pt")[1]["network"]["robust_width"] == 1.0
    scored = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.score",
            "--sweep",
            "run",
            "--n-examples",
            "8",
            "--attacks",
            "clean",
            "pgd20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    records = {p.stem: json.loads(p.read_text()) for p in (run / "scores").glob("*.json")}
    assert sorted(records) == names and all(r["n_examples"] == 8 for r in records.values())
    data = build_search_help_data(run)
    assert data.networks.set_index("name")["group"].to_dict() == {
        "ARNAS": "published",
        "DARTS_V2": "published",
        "random_0": "random",
        "trial_t0001": "pareto",
        "trial_t0002": "searched",
    }
    assert data.score_metric == M.PGD20_ACC and data.verdict.startswith(
        "Too few networks to decide"
    )


def test_checkpoints_from_before_network_specs_still_load(tmp_path) -> None:
    """best.pt written before NetworkSpec held Network's keyword arguments; it loads through
    NetworkSpec.from_legacy and gives the same network."""
    trainer = Trainer(TrainConfig(**{**TINY, "epochs": 1}), genotypes.get("ARNAS"), "arnas")
    best = trainer.run(tmp_path / "new", progress=False)
    state = torch.load(best, weights_only=True)
    spec = state["network"]
    legacy = {
        k: spec[k]
        for k in (
            "init_channels",
            "layers",
            "num_classes",
            "auxiliary",
            "drop_path_prob",
            "robust_start",
            "robust_width",
            "in_channels",
            "input_mean",
            "input_std",
        )
    }
    (tmp_path / "old").mkdir()
    torch.save({**state, "network": legacy}, tmp_path / "old" / "best.pt")
    new_model, _ = load_network(best)
    old_model, meta = load_network(tmp_path / "old" / "best.pt")
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(new_model(x), old_model(x)) and "schema" not in meta["network"]
