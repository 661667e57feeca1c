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

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from analysis.pareto import non_domination_rank
from arnas_common.errors import ArnasError
from arnas_common.io import atomic_write_text
from arnas_common.io import check_name
from arnas_common.io import inside
from arnas_common.io import read_json
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialRecord
from search_spaces import genotypes
from search_spaces.config import SpaceConfig
from search_spaces.genotype import Genotype
from search_spaces.spec import NetworkSpec

__all__ = ["GROUPS", "PUBLISHED", "Job", "plan_jobs", "read_manifest", "write_manifest"]

#: Job groups: found on the front, found off it (``--also``), random, published.
GROUPS = ("pareto", "searched", "random", "published")
#: Published genotypes trained beside every sweep's.
PUBLISHED = ("ARNAS", "DARTS_V2")
MANIFEST = "jobs.json"


#: Training seeds of each published genotype by default: their spread is the yardstick
#: of every difference between single networks.
PUBLISHED_SEEDS = 3


@dataclass(frozen=True)
class Job:
    """One network to train.

    ``spec`` is the searched network (skeleton, robust placement and width of the trial it
    came from; random genotypes take a finished trial's), resized by final training;
    ``None`` for the published genotypes, which the training config places and sizes.
    """

    name: str
    group: str
    genotype: Genotype
    spec: NetworkSpec | None = None
    trial_id: str | None = None  # search trial it came from (random: whose skeleton it takes)
    seed: int = 0  # added to the training config's seed
    unit: str = ""  # the genotype's name, shared by its seeds ("" = name)

    def __post_init__(self) -> None:
        if not self.unit:
            object.__setattr__(self, "unit", self.name)

    @property
    def robust_start(self) -> float | None:
        return None if self.spec is None else self.spec.robust_start

    @property
    def robust_width(self) -> float:
        return 1.0 if self.spec is None else self.spec.robust_width

    @property
    def architecture(self) -> Genotype | NetworkSpec:
        """What :class:`~analysis.trainer.Trainer` builds the network from."""
        return self.genotype if self.spec is None else self.spec

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "genotype": self.genotype.to_dict(),
            "network": None if self.spec is None else self.spec.to_dict(),
            "robust_start": self.robust_start,
            "robust_width": self.robust_width,
            "trial_id": self.trial_id,
            "seed": self.seed,
            "unit": self.unit,
        }

    def seeded(self, seed: int) -> Job:
        """The same network trained with seed offset ``seed`` (seed 0 keeps the name)."""
        name = self.unit if seed == 0 else f"{self.unit}_seed{seed}"
        return dataclasses.replace(self, name=name, seed=seed)


def _space_key(trial: TrialRecord, key: str) -> Any:
    """A trial's search-space key: its run config (fixed or sampled), else the default."""
    value = trial.config.get(key)
    return SpaceConfig.model_fields[key].default if value is None else value


def _genotype(trial: TrialRecord) -> Genotype:
    assert trial.genotype is not None  # finished trials have one (SweepResult.finished)
    return trial.genotype


def _job(trial: TrialRecord, name: str, group: str, genotype: Genotype) -> Job:
    spec = trial.network_spec()
    if spec is not None:
        spec = spec.replace(genotype=genotype)
    return Job(name, group, genotype, spec, trial.trial_id)


def plan_jobs(
    run_dir: str | Path,
    *,
    random: int = 0,
    also: int = 0,
    seed: int = 0,
    seeds: int = 1,
    published_seeds: int = PUBLISHED_SEEDS,
) -> list[Job]:
    """The networks to train for a sweep.

    Args:
        random: random genotypes (:meth:`Genotype.random` over the sweep's nodes and
            primitives), each with the robust-cell placement and width of a
            finished trial drawn at random.
        also: finished trials off the Pareto front, spread evenly over their
            non-domination ranks.
        seed: seed of both draws.
        seeds: training seeds of every genotype (``NAME``, ``NAME_seed1``, ...).
        published_seeds: training seeds of the published genotypes (at least ``seeds``).
    """
    run_dir = Path(run_dir)
    result = SweepResult.read(run_dir)
    finished = result.finished()
    if not finished:
        raise ArnasError(f"'{run_dir}' has no finished trial to train")
    ranks = non_domination_rank(
        result.objective_values(finished), list(result.objectives.values())
    )
    jobs = [
        _job(t, f"trial_{t.trial_id}", "pareto", _genotype(t))
        for t, r in zip(finished, ranks)
        if r == 0
    ]
    off = sorted(
        ((int(r), t.trial_id, t) for t, r in zip(finished, ranks) if r > 0), key=lambda x: x[:2]
    )
    if also > 0 and off:
        picks = sorted(set(np.linspace(0, len(off) - 1, min(also, len(off))).round().astype(int)))
        jobs += [
            _job(off[i][2], f"trial_{off[i][1]}", "searched", off[i][2].genotype) for i in picks
        ]
    generator = torch.Generator().manual_seed(seed)
    for k in range(random):
        source = finished[int(torch.randint(len(finished), (1,), generator=generator))]
        nodes = int(_space_key(source, "nodes"))
        primitives = tuple(_space_key(source, "primitives"))
        jobs.append(
            _job(source, f"random_{k}", "random", Genotype.random(nodes, generator, primitives))
        )
    jobs = [job.seeded(k) for job in jobs for k in range(seeds)]
    jobs += [
        Job(name, "published", genotypes.get(name)).seeded(k)
        for name in PUBLISHED
        for k in range(max(seeds, published_seeds))
    ]
    return jobs


def write_manifest(jobs: list[Job], out: str | Path) -> Path:
    """``out/jobs.json`` and each job's ``out/NAME/genotype.json``, atomically."""
    out = Path(out)
    for job in jobs:
        check_name(job.name, "job name", "analysis.train --sweep")
        job.genotype.save(inside(out / job.name / "genotype.json", out, "genotype file"))
    text = json.dumps({"schema": 1, "jobs": [job.to_dict() for job in jobs]}, indent=2) + "\n"
    return atomic_write_text(out / MANIFEST, text)


def read_manifest(final_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Job name -> its manifest record (empty when final training wrote none).

    Raises:
        ArnasError: unreadable, not a manifest, or naming a job with an unsafe name.
    """
    path = Path(final_dir) / MANIFEST
    if not path.is_file():
        return {}
    data = read_json(path, "final-training manifest")
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list) or not all(
        isinstance(job, dict) and "name" in job for job in jobs
    ):
        raise ArnasError(f"'{path}' is not a manifest of analysis.train --sweep; rerun it")
    for job in jobs:
        check_name(job["name"], "job name", str(path))
        if job.get("unit") is not None:
            check_name(job["unit"], "job unit", str(path))
    return {job["name"]: job for job in jobs}
