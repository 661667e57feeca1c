"""``python -m arnas_ray.search``: run one ARNAS search from a YAML config."""

from __future__ import annotations

import argparse
import logging
import textwrap
import time
from functools import partial
from pathlib import Path

import yaml
from tqdm import tqdm

from arnas_common import metrics as M
from arnas_common.cli import ArgumentParser
from arnas_common.cli import add_set_argument
from arnas_common.cli import add_threads_argument
from arnas_common.cli import apply_overrides
from arnas_common.cli import check_out_dir
from arnas_common.cli import describe_fields
from arnas_common.cli import load_yaml
from arnas_common.cli import override_sources
from arnas_common.cli import run_cli
from arnas_common.cli import set_threads
from arnas_common.errors import CheckpointError
from arnas_common.io import atomic_write_text
from arnas_common.io import remove_orphan_temporaries
from arnas_ray.search.config import SearchConfig
from arnas_ray.search.config import space_for
from arnas_ray.search.engine import ArnasSearch
from arnas_ray.search.engine import check_checkpoint
from arnas_ray.search.engine import read_checkpoint
from arnas_ray.search.run_config import RunConfig
from search_spaces.config import SpaceConfig

SMOKE_TEST = {
    "epochs": 1,
    "warmup_epochs": 0,
    "eps_warmup_epochs": 0,
    "steps_per_epoch": 2,
    "data_limit": 120,
    "val_limit": 16,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m arnas_ray.search",
        description=textwrap.fill(
            "Run one ARNAS search (Ou et al., CVPR 2024): PGD adversarial training of the "
            "supernet, second-order architecture gradients of the natural and adversarial "
            "objectives, combined by MGDA. Writes metrics.jsonl (one line per epoch), "
            "genotype.json, config.yaml and checkpoint.pt to --out."
        ),
        epilog="The config file is one flat YAML mapping of these keys:\n\n"
        + describe_fields(SearchConfig, SpaceConfig)
        + "\n\nnum_classes, in_channels, input_mean and input_std come from the dataset.",
    )
    parser.add_argument("--config", type=Path, help="YAML file (default: paper settings)")
    add_set_argument(parser, "--set epochs=3")
    parser.add_argument("--out", type=Path, help="output directory (default: runs/search-TIME)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    parser.add_argument(
        "--smoke-test", action="store_true", help="1 epoch of 2 steps on few images"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_argument(parser)
    return parser.parse_args(argv)


def format_epoch(row: dict, epochs: int) -> str:
    """One console line per epoch."""
    if row[M.MGDA_GAMMA_MEAN] is None:
        arch = "warm-up (weights only)"
    else:
        arch = (
            f"gamma {row[M.MGDA_GAMMA_MEAN]:.2f} [{row[M.MGDA_GAMMA_MIN]:.2f}, "
            f"{row[M.MGDA_GAMMA_MAX]:.2f}] alpha_max {row[M.ALPHA_MAX_WEIGHT]:.2f}"
        )
    if row[M.CLEAN_ACC] is None:
        scores = "not validated"
    else:
        scores = (
            f"clean_acc {row[M.CLEAN_ACC]:.3f} pgd_acc {row[M.PGD_ACC]:.3f} "
            f"(eps {row[M.VAL_EPS]:.3f})"
        )
    return (
        f"epoch {row[M.EPOCH]}/{epochs}: train_loss {row[M.TRAIN_LOSS]:.3f} "
        f"(eps {row[M.TRAIN_EPS]:.3f}) {scores} {arch} "
        f"params {row[M.PARAMS_M]:.2f}M ({row[M.EPOCH_TIME_S]:.1f}s)"
    )


def _advance(bar: tqdm, _step: int, out: dict[str, float]) -> None:
    bar.update()
    bar.set_postfix(loss=f"{out['loss']:.3f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    flat = load_yaml(args.config) if args.config else {}
    if args.smoke_test:
        flat = {**flat, **SMOKE_TEST}
    flat = apply_overrides(flat, args.overrides)
    run = RunConfig.from_flat(
        flat, where=str(args.config or "config"), sources=override_sources(args.overrides)
    )
    config, space = run.search, dict(run.space)
    if args.resume and args.out is None:
        raise CheckpointError("--resume needs --out DIR of the run to continue")
    out = check_out_dir(args.out or Path("runs") / time.strftime("search-%Y%m%d-%H%M%S"))
    checkpoint = out / "checkpoint.pt"
    if not args.resume and checkpoint.exists():
        raise CheckpointError(f"'{out}' already holds a run; add --resume or choose another --out")
    if args.resume:  # every checkpoint problem now, before data and model are built
        check_checkpoint(read_checkpoint(checkpoint), config, space_for(config, space).to_dict())

    if out.is_dir():
        remove_orphan_temporaries(out)  # left by a write that a kill interrupted
    threads = set_threads(args.threads)
    search = ArnasSearch(config, space)
    if args.resume:
        search.load_checkpoint(checkpoint)
        print(f"resumed {out} at epoch {search.epoch}/{config.epochs}")
    atomic_write_text(
        out / "config.yaml", yaml.safe_dump({**config.to_dict(), **space}, sort_keys=False)
    )
    print(
        f"searching on {search.device} ({threads} CPU threads; {config.dataset}, "
        f"{config.epochs} epochs, "
        f"{search.steps_per_epoch()} steps each) -> {out}"
    )
    while search.epoch < config.epochs:
        bar = tqdm(
            total=search.steps_per_epoch(),
            desc=f"epoch {search.epoch + 1}/{config.epochs}",
            leave=False,
            disable=args.quiet,
        )
        row = search.train_epoch(progress=partial(_advance, bar))
        bar.close()
        search.save_checkpoint(checkpoint)
        search.write_outputs(out)
        print(format_epoch(row, config.epochs))
    search.write_outputs(out)
    print("genotype:\n" + search.genotype().describe())
    print(f"wrote {out / 'genotype.json'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
