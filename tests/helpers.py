"""What several tests share: tiny presets, config writers, small real models, the
dominance oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from arnas_ray.search.data import load_dataset
from search_spaces import genotypes


def train_digits_cnn(seed: int = 0, steps: int = 150) -> nn.Module:
    """A tiny CNN trained for a few Adam steps on the 8x8 digits (train split), in eval mode."""
    torch.manual_seed(seed)
    x, y = load_dataset("digits", image_size=8).tensors
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 16, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,))
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval()


def write_sweep_run(run, objectives, rows, fixed=None):
    """A finished sweep's run directory (a SweepResult) from plain rows: each row
    gives trial_id, metric values and optionally status, genotype (a registered
    name or a Genotype), alphas (cell type -> rows of op weights) and sampled (the
    trial's sampled run-config keys)."""
    from arnas_ray.results import SweepResult
    from arnas_ray.results import TrialRecord
    from arnas_ray.results import TrialStatus
    from arnas_ray.search.config import nest_dotted

    trials = []
    for number, row in enumerate(rows):
        row = dict(row)
        trial_id, sampled = row.pop("trial_id"), row.pop("sampled", {})
        status = TrialStatus(row.pop("status", "FINISHED"))
        genotype = row.pop("genotype", "PDARTS")
        genotype = genotypes.get(genotype) if isinstance(genotype, str) else genotype
        alphas = row.pop("alphas", {})
        network = row.pop("network", None)
        trials.append(
            TrialRecord(
                trial_id=trial_id,
                status=status,
                config=nest_dotted({**(fixed or {}), **sampled}),
                sampled=tuple(sampled),
                metrics=row,
                genotype=genotype,
                number=number,
                epochs_done=1,
                alphas=alphas,
                network=network,
            )
        )
    SweepResult(name="fixture", objectives=objectives, trials=tuple(trials)).write(run)
    return run


#: Every non-domination test compares against this brute-force oracle.
def dominates(a, b, directions) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one."""
    better = [(x > y) if d == "maximize" else (x < y) for x, y, d in zip(a, b, directions)]
    no_worse = [(x >= y) if d == "maximize" else (x <= y) for x, y, d in zip(a, b, directions)]
    return all(no_worse) and any(better)


def brute_force_front(points, directions) -> list[int]:
    return [
        i for i, p in enumerate(points) if not any(dominates(q, p, directions) for q in points)
    ]


def plain_and_fused_supernets(space, seed):
    """A float64 supernet with plain edges and non-trivial alphas, and its fused twin."""
    from search_spaces import Supernet

    torch.manual_seed(seed)
    plain = Supernet(space, edge_impl="plain").double()
    with torch.no_grad():
        for alpha in plain.arch_parameters().values():
            alpha.normal_(0, 0.5)
    fused = Supernet(space).double()
    fused.copy_from(plain)
    return plain, fused


#: TrainConfig keys of a final training small enough for tests (seconds per network).
TINY_TRAIN = dict(
    dataset="digits",
    image_size=8,
    data_limit=200,
    val_limit=32,
    epochs=2,
    batch_size=16,
    steps_per_epoch=3,
    layers=3,
    init_channels=4,
    cutout=2,
    attack={"steps": 1},
    val_attack_steps=1,
)

#: Run-config keys of a search small enough for sweep tests (seconds per trial).
TINY_SWEEP_FIXED = dict(
    dataset="digits",
    image_size=8,
    data_limit=120,
    val_limit=16,
    device="cpu",
    epochs=2,
    batch_size=8,
    steps_per_epoch=2,
    train_attack={"steps": 1},
    search_attack={"steps": 1},
    val_attack_steps=1,
    layers=3,
    init_channels=2,
    nodes=1,
    params_layers=5,
    params_channels=4,
)
TINY_SWEEP_SPACE = {
    "regularization_coefficient": {"type": "loguniform", "low": 0.01, "high": 10.0},
    "arch_mode": {"type": "choice", "values": ["mgda", "weighted"]},
    "natural_weight": {
        "type": "uniform",
        "low": 0.1,
        "high": 1.0,
        "when": {"arch_mode": "weighted"},
    },
    "robust_width": {"type": "choice", "values": [0.5, 2.0]},
}


def write_sweep_config(tmp_path: Path, **changes) -> Path:
    """``tmp_path/sweep.yaml``: a sweep of tiny searches (run directory ``tmp_path/run``)."""
    data = {
        "name": "test",
        "out": str(tmp_path / "run"),
        "trials": 3,
        "max_concurrent": 2,
        "sampler": "nsga2",
        "sampler_options": {"population_size": 2},
        "fixed": TINY_SWEEP_FIXED,
        "search_space": TINY_SWEEP_SPACE,
        "report": False,
        "trial_timeout_s": 300,
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_sweep_cli(args, env=None, **kw) -> subprocess.Popen:
    """``python -m arnas_ray.sweep --quiet ARGS`` started in a session of its own (so a
    test can SIGKILL the driver and its local Ray processes), output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "arnas_ray.sweep", "--quiet", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        **kw,
    )


def run_sweep_cli(args, env=None, quiet=True, **kw):
    """``python -m arnas_ray.sweep ARGS`` as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "arnas_ray.sweep", *(["--quiet"] if quiet else []), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        **kw,
    )
