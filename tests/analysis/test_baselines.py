"""Which networks final training trains: Pareto, off-front, random, published."""

from __future__ import annotations

import json

import pytest
import torch

from analysis.baselines import PUBLISHED
from analysis.baselines import plan_jobs
from analysis.baselines import read_manifest
from analysis.baselines import write_manifest
from arnas_common.errors import ArnasError
from search_spaces import genotypes
from search_spaces.genotype import Genotype
from search_spaces.operations import PRIMITIVES
from tests.helpers import write_sweep_run

TWO = {"clean_acc": "maximize", "pgd_acc": "maximize"}
ROWS = [  # front (2 objectives): a, b, c; ranks below: d (1), e (2), f (3)
    {"trial_id": "a", "clean_acc": 0.9, "pgd_acc": 0.5, "sampled": {"robust_start": 0.4}},
    {"trial_id": "b", "clean_acc": 0.8, "pgd_acc": 0.6, "genotype": "DARTS_V1"},
    {"trial_id": "c", "clean_acc": 0.7, "pgd_acc": 0.7},
    {"trial_id": "d", "clean_acc": 0.75, "pgd_acc": 0.55},
    {"trial_id": "e", "clean_acc": 0.7, "pgd_acc": 0.5},
    {"trial_id": "f", "clean_acc": 0.6, "pgd_acc": 0.4},
    {"trial_id": "g", "clean_acc": 0.99, "pgd_acc": 0.99, "status": "ERROR"},
]


def test_groups_front_spread_and_placement(tmp_path) -> None:
    run = write_sweep_run(tmp_path / "run", TWO, ROWS, fixed={"robust_width": 2.0, "nodes": 4})
    jobs = plan_jobs(run, random=3, also=2, seed=1)
    groups = {
        g: [j.name for j in jobs if j.group == g]
        for g in ("pareto", "searched", "random", "published")
    }
    assert groups["pareto"] == [
        "trial_a",
        "trial_b",
        "trial_c",
    ]  # the errored trial g is not a candidate
    assert groups["searched"] == ["trial_d", "trial_f"]  # spread over ranks 1..3: first and last
    assert groups["random"] == ["random_0", "random_1", "random_2"]
    assert groups["published"] == [f"{n}{s}" for n in PUBLISHED for s in ("", "_seed1", "_seed2")]
    by_name = {j.name: j for j in jobs}
    # Sampled keys win over fixed ones, fixed ones over defaults: nothing silently dropped.
    assert (by_name["trial_a"].robust_start, by_name["trial_a"].robust_width) == (0.4, 2.0)
    assert (by_name["trial_c"].robust_start, by_name["trial_c"].robust_width) == (None, 2.0)
    assert by_name["trial_b"].genotype == genotypes.get("DARTS_V1")
    for job in jobs:
        if job.group == "random":
            assert job.robust_width == 2.0 and job.trial_id in {r["trial_id"] for r in ROWS[:6]}


def test_random_draws_are_seeded(tmp_path) -> None:
    run = write_sweep_run(tmp_path / "run", TWO, ROWS, fixed={"nodes": 2})
    first = [j.genotype for j in plan_jobs(run, random=4, seed=7) if j.group == "random"]
    again = [j.genotype for j in plan_jobs(run, random=4, seed=7) if j.group == "random"]
    other = [j.genotype for j in plan_jobs(run, random=4, seed=8) if j.group == "random"]
    assert first == again and first != other
    assert all(g.nodes() == 2 for g in first)


def test_random_genotypes_follow_the_derivation_rules() -> None:
    generator = torch.Generator().manual_seed(0)
    seen_pairs, seen_ops = set(), set()
    for _ in range(200):
        genotype = Genotype.random(3, generator, PRIMITIVES)
        for cell in ("accurate", "reduce", "robust"):
            edges, concat = genotype.cell(cell)
            assert concat == (2, 3, 4)
            for node in range(3):
                (op_a, a), (op_b, b) = edges[2 * node], edges[2 * node + 1]
                assert 0 <= a < b < node + 2  # two distinct earlier inputs
                seen_pairs.add((node, a, b))
                seen_ops.update((op_a, op_b))
    assert "none" not in seen_ops and seen_ops == set(PRIMITIVES)
    assert len(seen_pairs) == 1 + 3 + 6  # every input pair of every node occurs


def test_manifest_round_trip(tmp_path) -> None:
    run = write_sweep_run(tmp_path / "run", TWO, ROWS)
    jobs = plan_jobs(run, random=1)
    write_manifest(jobs, tmp_path / "final")
    manifest = read_manifest(tmp_path / "final")
    assert list(manifest) == [j.name for j in jobs]
    assert Genotype.load(tmp_path / "final" / "random_0" / "genotype.json") == jobs[-7].genotype
    assert manifest["random_0"]["group"] == "random"
    assert json.loads((tmp_path / "final" / "jobs.json").read_text())["schema"] == 1


def test_seeds_replicate_every_genotype_and_share_its_unit(tmp_path) -> None:
    run = write_sweep_run(tmp_path / "run", TWO, ROWS)
    jobs = plan_jobs(run, random=1, seeds=2, published_seeds=3)
    names = [j.name for j in jobs]
    assert names[:2] == ["trial_a", "trial_a_seed1"] and "random_0_seed1" in names
    assert [j.seed for j in jobs if j.unit == "ARNAS"] == [0, 1, 2]
    assert {j.unit for j in jobs if j.name.startswith("trial_a")} == {"trial_a"}
    assert len([j for j in jobs if j.group != "published"]) == 2 * 4  # a, b, c and random_0, twice
    # the published ones get at least --seeds
    assert (
        len([j for j in plan_jobs(run, seeds=4, published_seeds=3) if j.unit == "DARTS_V2"]) == 4
    )


def test_missing_sweep_files_are_one_clear_error(tmp_path) -> None:
    with pytest.raises(ArnasError, match="no result.json"):
        plan_jobs(tmp_path)


@pytest.mark.parametrize("recorded", [True, False])
def test_params_m_counts_the_network_final_training_builds(tmp_path, recorded) -> None:
    """A trial's params_m is the size of the very network final training builds from its
    record at the params size, stem_multiplier and robust width included (before
    NetworkSpec, final training always built stem multiplier 3). ``recorded=False``: a run
    directory from before the record held the spec; it is rebuilt from the trial's config."""
    import json

    from analysis.trainer import TrainConfig
    from analysis.trainer import Trainer
    from arnas_common import metrics as M
    from arnas_ray.search import ArnasSearch
    from arnas_ray.search import SearchConfig
    from search_spaces.network import count_parameters
    from search_spaces.spec import NetworkSpec
    from tests.helpers import TINY_TRAIN

    fixed = {
        **{"dataset": "digits", "image_size": 8, "data_limit": 120, "epochs": 1, "batch_size": 8},
        **{"steps_per_epoch": 1, "val_limit": 8, "val_attack_steps": 1},
        **{"train_attack": {"steps": 1}, "search_attack": {"steps": 1}},
        **{"params_layers": 5, "params_channels": 6},
    }
    space = {
        "layers": 4,
        "init_channels": 2,
        "nodes": 2,
        "stem_multiplier": 2,
        "robust_width": 2.0,
    }
    search = ArnasSearch(SearchConfig(**fixed), space)
    row = search.train_epoch()
    trial = {
        "trial_id": "t",
        M.CLEAN_ACC: 0.5,
        M.PGD_ACC: 0.3,
        M.PARAMS_M: row[M.PARAMS_M],
        "genotype": search.genotype(),
        "sampled": {"stem_multiplier": 2},
    }
    if recorded:
        trial["network"] = NetworkSpec.from_dict(json.loads(row[M.NETWORK]))
    run = write_sweep_run(tmp_path / "run", TWO, [trial], fixed={**fixed, **space})
    job = next(j for j in plan_jobs(run) if j.group == "pareto")
    assert job.spec.stem_multiplier == 2 and job.spec.robust_width == 2.0
    config = TrainConfig(**{**TINY_TRAIN, "layers": 5, "init_channels": 6})
    trainer = Trainer(config, job.architecture, job.name)
    assert count_parameters(trainer.model) == round(row[M.PARAMS_M] * 1e6)
    # ... and a stem multiplier of 3 would have been another network
    default_stem = Trainer(config, job.spec.replace(stem_multiplier=3), job.name)
    assert count_parameters(default_stem.model) != count_parameters(trainer.model)
