"""``python -m arnas_ray.sweep``: the command line of a sweep."""

from __future__ import annotations

import argparse
import logging
import os
import textwrap
import time
from pathlib import Path

from arnas_common.cli import ArgumentParser
from arnas_common.cli import add_set_argument
from arnas_common.cli import describe_fields
from arnas_common.cli import run_cli
from arnas_common.rayenv import keep_local_ray_on_loopback
from arnas_ray.sweep.config import DEFAULT_CONFIG
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.config import load_sweep_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m arnas_ray.sweep",
        description=textwrap.fill(
            "Sweep ARNAS searches with Ray Tune and an Optuna multi-objective sampler. "
            "Writes result.json (the sweep's result), trials.parquet, pareto.json, sweep.yaml, "
            "run.json, the Optuna study (SQLite by default) and, with analysis installed, "
            "report.html and pareto.csv to the run directory."
        ),
        epilog=describe_fields(SweepConfig)
        + "\n\nfixed: and search_space: take the keys of `python -m arnas_ray.search --help`"
        + "\n(search_space reaches nested keys with dots: train_attack.eps)."
        + f"\nDefault config: {DEFAULT_CONFIG}",
    )
    parser.add_argument(
        "--config", type=Path, help="sweep YAML (default: configs/sweep-tiny.yaml)"
    )
    add_set_argument(parser, "--set trials=4 --set fixed.epochs=2 (dotted keys nest)")
    parser.add_argument("--out", type=Path, help="run directory (overrides the config's out)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted sweep in --out"
    )
    parser.add_argument(
        "--address", help="Ray cluster: auto or HOST:PORT (default: RAY_ADDRESS or local)"
    )
    parser.add_argument(
        "--warm-start",
        type=Path,
        metavar="RUN_DIR",
        help="add an earlier sweep's finished trials (same objectives and space) to the new "
        "study as completed trials, so the sampler starts from them",
    )
    parser.add_argument("--smoke-test", action="store_true", help="2 trials of 1 short epoch")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "--quiet", action="store_true", help="no progress lines (the summary still prints)"
    )
    loudness.add_argument(
        "--verbose",
        action="store_true",
        help="Ray Tune's own progress tables and every library warning, instead of one "
        "line per trial epoch",
    )
    return parser.parse_args(argv)


SMOKE_TEST = [
    "trials=2",
    "fixed.epochs=1",
    "fixed.warmup_epochs=0",
    "fixed.eps_warmup_epochs=0",
    "fixed.steps_per_epoch=2",
    "fixed.val_limit=16",
]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = (SMOKE_TEST if args.smoke_test else []) + args.overrides
    config = load_sweep_config(args.config, overrides, args.out)
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        keep_local_ray_on_loopback()  # before Ray is imported: it reads the switch then
    from arnas_ray.sweep.run import run_sweep
    from arnas_ray.sweep.run import write_report

    started = time.time()
    run_sweep(
        config,
        address=args.address,
        resume=args.resume,
        verbose=0 if args.quiet else 2 if args.verbose else 1,
        warm_start=args.warm_start,
    )
    if config.report:
        write_report(config.out_dir)
    print(f"sweep took {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    run_cli(main)
