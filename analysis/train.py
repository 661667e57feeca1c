"""``python -m analysis.train``: adversarial training of discrete ARNAS networks.

Paper protocol (Ou et al., CVPR 2024, Sec. 4.1; :mod:`analysis.trainer`).
``--genotype FILE|NAME --config FILE.yaml`` trains one network; ``--sweep
RUN_DIR`` trains every Pareto genotype of a sweep, searched genotypes off the
front, random genotypes of its space and the published ARNAS and DARTS_V2 as Ray
Tune trials (:mod:`analysis.final_training`, imported only then).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from analysis.baselines import GROUPS
from analysis.baselines import PUBLISHED_SEEDS
from analysis.baselines import plan_jobs
from analysis.checkpoint import read_checkpoint
from analysis.trainer import SMOKE_TEST
from analysis.trainer import TrainConfig
from analysis.trainer import Trainer
from analysis.trainer import check_resumable
from analysis.trainer import final_spec
from analysis.trainer import resolve_genotype
from arnas_common.cli import ArgumentParser
from arnas_common.cli import add_set_argument
from arnas_common.cli import add_threads_argument
from arnas_common.cli import apply_overrides
from arnas_common.cli import check_out_dir
from arnas_common.cli import describe_fields
from arnas_common.cli import load_yaml
from arnas_common.cli import override_sources
from arnas_common.cli import resolve_path
from arnas_common.cli import run_cli
from arnas_common.cli import set_threads
from arnas_common.device import check_local_resources
from arnas_common.errors import CheckpointError
from arnas_common.errors import ConfigError
from arnas_common.io import atomic_write_text
from arnas_common.io import exclusive_lock
from arnas_common.io import remove_orphan_temporaries
from arnas_ray.search.data import dataset_info
from search_spaces.network import count_parameters

__all__ = ["TrainConfig", "Trainer", "main", "resolve_genotype"]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m analysis.train",
        description="Adversarially train ARNAS networks (PGD-AT or TRADES); best.pt is chosen "
        "on validation.",
        epilog=describe_fields(TrainConfig),
    )
    parser.add_argument(
        "--genotype", help="registered name (ARNAS, DARTS_V2, ...) or genotype JSON file"
    )
    parser.add_argument(
        "--sweep", type=Path, help="sweep run directory: train its Pareto genotypes + baselines"
    )
    parser.add_argument(
        "--config", type=Path, help="YAML of TrainConfig keys (default: paper settings)"
    )
    add_set_argument(parser, "--set epochs=10")
    parser.add_argument("--out", type=Path, help="output directory")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--cpus", type=float, default=1.0, help="--sweep: CPUs per trial")
    parser.add_argument("--gpus", type=float, default=0.0, help="--sweep: GPUs per trial")
    parser.add_argument(
        "--random",
        type=int,
        default=0,
        metavar="N",
        help="--sweep: also train N random genotypes of the sweep's space (baselines)",
    )
    parser.add_argument(
        "--also",
        type=int,
        default=0,
        metavar="K",
        help="--sweep: also train K searched genotypes off the Pareto front",
    )
    parser.add_argument(
        "--random-seed", type=int, default=0, help="--sweep: seed of the --random/--also draws"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="--sweep: train every genotype with N seeds (seed, seed+1, ...; default 1)",
    )
    parser.add_argument(
        "--published-seeds",
        type=int,
        default=PUBLISHED_SEEDS,
        metavar="N",
        help=f"--sweep: seeds of ARNAS and DARTS_V2, to show seed spread (default "
        f"{PUBLISHED_SEEDS}; at least --seeds)",
    )
    parser.add_argument(
        "--smoke-test", action="store_true", help="1 epoch of 2 steps of a small network"
    )
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    data = load_yaml(args.config) if args.config else {}
    if args.smoke_test:
        data = {**data, **SMOKE_TEST}
    data = apply_overrides(data, args.overrides)
    config = TrainConfig.from_dict(
        data, where=str(args.config or "train config"), sources=override_sources(args.overrides)
    )
    if (args.genotype is None) == (args.sweep is None):
        raise ConfigError("give exactly one of --genotype NAME|FILE and --sweep RUN_DIR")
    if min(args.random, args.also) < 0:
        raise ConfigError("--random and --also take a count of 0 or more")
    if min(args.seeds, args.published_seeds) < 1:
        raise ConfigError(
            f"--seeds and --published-seeds take a count of 1 or more, got {args.seeds} and "
            f"{args.published_seeds}"
        )
    if args.cpus <= 0 or args.gpus < 0:
        raise ConfigError(
            f"--cpus must be above 0 and --gpus at least 0, got {args.cpus:g} and {args.gpus:g}"
        )
    if args.sweep is not None:
        run_dir = resolve_path(args.sweep)
        jobs = plan_jobs(
            run_dir,
            random=args.random,
            also=args.also,
            seed=args.random_seed,
            seeds=args.seeds,
            published_seeds=args.published_seeds,
        )
        out = check_out_dir(args.out or run_dir / "final")
        check_local_resources(args.cpus, args.gpus, "analysis.train --sweep --cpus/--gpus")
        from analysis.final_training import train_sweep_jobs  # Ray, only for --sweep

        with exclusive_lock(out, "analysis.train --sweep"):
            train_sweep_jobs(jobs, config, out, args.cpus, args.gpus)
        counts = ", ".join(f"{sum(j.group == g for j in jobs)} {g}" for g in GROUPS)
        print(f"trained {len(jobs)} networks ({counts}) under {out}")
        return 0
    name, genotype = resolve_genotype(args.genotype)
    out = check_out_dir(args.out or Path("runs") / f"train-{name}")
    if (out / "last.pt").exists() and not args.resume:
        raise CheckpointError(
            f"'{out}' already holds a training run; add --resume or choose another --out"
        )
    if (
        args.resume and (out / "last.pt").exists()
    ):  # every checkpoint problem now, before any data loads
        spec = final_spec(genotype, config, dataset_info(config.dataset, config.image_size))
        check_resumable(read_checkpoint(out / "last.pt", full=True), config, spec, out / "last.pt")
    if out.is_dir():
        remove_orphan_temporaries(out)  # left by a write that a kill interrupted
    set_threads(args.threads)
    trainer = Trainer(config, genotype, name)
    print(
        f"training {name} ({count_parameters(trainer.model) / 1e6:.2f}M parameters) on "
        f"{trainer.device} -> {out}"
    )
    atomic_write_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    best = trainer.run(out, resume=args.resume)
    print(f"best checkpoint (validation pgd_acc, then clean_acc): {best}")
    return 0


if __name__ == "__main__":
    run_cli(main)
