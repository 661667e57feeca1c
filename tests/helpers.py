"""Small real models shared by several tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arnas_ray.data import load_dataset
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
    """A finished sweep's run directory (trials.parquet + sweep.yaml) from plain rows:
    each row gives trial_id, the objective values and optionally status, genotype
    (a registered name) and hp_* keys."""
    import pandas as pd
    import yaml

    run.mkdir(parents=True, exist_ok=True)
    records = []
    for row in rows:
        record = {"status": "FINISHED", **row}
        record["genotype"] = genotypes.get(record.get("genotype", "PDARTS")).to_json()
        records.append(record)
    pd.DataFrame(records).to_parquet(run / "trials.parquet", index=False)
    sweep = {"name": "fixture", "objectives": objectives, "fixed": fixed or {}}
    (run / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    return run


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
