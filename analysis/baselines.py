"""The networks final training trains for a sweep, and why.

"Does the search help?" needs more than the Pareto genotypes: a few searched
genotypes *off* the front (so proxy-vs-final correlations have points on both
sides of it), random genotypes from the same space (the baseline NAS papers
keep finding hard to beat: Li & Talwalkar, UAI 2019; Yang et al., ICLR 2020)
and the published ARNAS and DARTS_V2 cells. :func:`plan_jobs` chooses them,
seeded; :func:`write_manifest` records each job (group, genotype, placement of
the robust cells, source trial) in ``final/jobs.json`` and a
``final/NAME/genotype.json``, which scoring and the report read back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from analysis.pareto import non_domination_rank
from arnas_ray import metrics as M
from search_spaces import genotypes
from search_spaces._io import atomic_write_text
from search_spaces.config import SpaceConfig
from search_spaces.errors import ArnasError
from search_spaces.genotype import Genotype

__all__ = ["GROUPS", "PUBLISHED", "Job", "plan_jobs", "read_manifest", "write_manifest"]

#: Job groups: found on the front, found off it (``--also``), random, published.
GROUPS = ("pareto", "searched", "random", "published")
#: Published genotypes trained beside every sweep's.
PUBLISHED = ("ARNAS", "DARTS_V2")
MANIFEST = "jobs.json"


@dataclass(frozen=True)
class Job:
    """One network to train."""

    name: str
    group: str
    genotype: Genotype
    robust_start: float | None
    robust_width: float
    trial_id: str | None  # search trial it came from (random: whose placement it takes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "group": self.group, "genotype": self.genotype.to_dict(),
                "robust_start": self.robust_start, "robust_width": self.robust_width,
                "trial_id": self.trial_id}  # fmt: skip


def _sweep(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any], dict[str, str]]:
    trials_path, sweep_path = run_dir / "trials.parquet", run_dir / "sweep.yaml"
    for path in (trials_path, sweep_path):
        if not path.is_file():
            raise ArnasError(f"'{run_dir}' has no {path.name}; is it the run directory of a finished sweep?")
    trials = pd.read_parquet(trials_path)
    sweep = yaml.safe_load(sweep_path.read_text()) or {}
    objectives = dict(sweep.get("objectives") or M.DEFAULT_OBJECTIVES)
    return trials, dict(sweep.get("fixed") or {}), objectives


def _space_key(row: pd.Series, fixed: dict[str, Any], key: str) -> Any:
    """A trial's search-space key: sampled (``hp_``), else fixed, else the default."""
    value = row.get(f"hp_{key}")
    if value is not None and not (isinstance(value, float) and np.isnan(value)):
        return value
    return fixed.get(key, SpaceConfig.model_fields[key].default)


def plan_jobs(run_dir: str | Path, *, random: int = 0, also: int = 0, seed: int = 0) -> list[Job]:
    """The networks to train for a sweep.

    Args:
        random: random genotypes (:meth:`Genotype.random` over the sweep's nodes and
            primitives), each with the robust-cell placement and width of a
            finished trial drawn at random.
        also: finished trials off the Pareto front, spread evenly over their
            non-domination ranks.
        seed: seed of both draws.
    """
    run_dir = Path(run_dir)
    trials, fixed, objectives = _sweep(run_dir)
    finished = trials[(trials["status"] == "FINISHED") & trials["genotype"].notna()]
    finished = finished.dropna(subset=list(objectives)).reset_index(drop=True)
    if finished.empty:
        raise ArnasError(f"'{run_dir}' has no finished trial to train")
    ranks = non_domination_rank(finished[list(objectives)].to_numpy(float), list(objectives.values()))
    jobs: list[Job] = []

    def searched(row: pd.Series, group: str) -> Job:
        return Job(f"trial_{row['trial_id']}", group, Genotype.from_json(row["genotype"]),
                   _space_key(row, fixed, "robust_start"), float(_space_key(row, fixed, "robust_width")),
                   str(row["trial_id"]))  # fmt: skip

    jobs += [searched(row, "pareto") for _, row in finished[ranks == 0].iterrows()]
    off = finished[ranks > 0].assign(rank=ranks[ranks > 0]).sort_values(["rank", "trial_id"])
    if also > 0 and len(off):
        picks = sorted(set(np.linspace(0, len(off) - 1, min(also, len(off))).round().astype(int)))
        jobs += [searched(off.iloc[i], "searched") for i in picks]
    generator = torch.Generator().manual_seed(seed)
    nodes = int(fixed.get("nodes", SpaceConfig.model_fields["nodes"].default))
    primitives = tuple(fixed.get("primitives") or SpaceConfig.model_fields["primitives"].default)
    for k in range(random):
        source = finished.iloc[int(torch.randint(len(finished), (1,), generator=generator))]
        genotype = Genotype.random(nodes, generator, primitives)
        jobs.append(Job(f"random_{k}", "random", genotype, _space_key(source, fixed, "robust_start"),
                        float(_space_key(source, fixed, "robust_width")), str(source["trial_id"])))  # fmt: skip
    jobs += [Job(name, "published", genotypes.get(name), None, 1.0, None) for name in PUBLISHED]
    return jobs


def write_manifest(jobs: list[Job], out: str | Path) -> Path:
    """``out/jobs.json`` and each job's ``out/NAME/genotype.json``, atomically."""
    out = Path(out)
    for job in jobs:
        job.genotype.save(out / job.name / "genotype.json")
    text = json.dumps({"schema": 1, "jobs": [job.to_dict() for job in jobs]}, indent=2) + "\n"
    return atomic_write_text(out / MANIFEST, text)


def read_manifest(final_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Job name -> its manifest record (empty when final training wrote none)."""
    path = Path(final_dir) / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ArnasError(f"'{path}' is not valid JSON ({error}); rerun analysis.train --sweep") from None
    return {job["name"]: job for job in data.get("jobs", [])}
