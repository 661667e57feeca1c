"""Small real models shared by several tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arnas_ray.search.data import load_dataset
from search_spaces import genotypes


def train_digits_cnn(seed: int = 0, steps: int = 150) -> nn.Module:
    """A tiny CNN trained for a few Adam steps on the 8x8 digits (train split), in eval mode."""
    torch.manual_seed(seed)
    x, y = load_dataset("digits", image_size=8).tensors
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 16, 10)
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
    name) and sampled (the trial's sampled run-config keys)."""
    from arnas_ray.results import SweepResult, TrialRecord, TrialStatus

    trials = []
    for number, row in enumerate(rows):
        row = dict(row)
        trial_id, sampled = row.pop("trial_id"), row.pop("sampled", {})
        status = TrialStatus(row.pop("status", "FINISHED"))
        genotype = genotypes.get(row.pop("genotype", "PDARTS"))
        trials.append(TrialRecord(trial_id=trial_id, status=status, config={**(fixed or {}), **sampled},
                                  sampled=tuple(sampled), metrics=row, genotype=genotype, number=number,
                                  epochs_done=1))  # fmt: skip
    SweepResult(name="fixture", objectives=objectives, trials=tuple(trials)).write(run)
    return run


#: Every non-domination test compares against this brute-force oracle.
def dominates(a, b, directions) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one."""
    better = [(x > y) if d == "maximize" else (x < y) for x, y, d in zip(a, b, directions)]
    no_worse = [(x >= y) if d == "maximize" else (x <= y) for x, y, d in zip(a, b, directions)]
    return all(no_worse) and any(better)


def brute_force_front(points, directions) -> list[int]:
    return [i for i, p in enumerate(points) if not any(dominates(q, p, directions) for q in points)]


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
