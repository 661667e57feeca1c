"""``python -m analysis.report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

from analysis.report.page import write_report
from arnas_common.cli import ArgumentParser
from arnas_common.cli import run_cli

DESCRIPTION = """\
Write RUN_DIR/report.html (one self-contained interactive page that opens offline)
and RUN_DIR/pareto.csv for a sweep's run directory.

The page shows the Pareto front of the finished searches over all the sweep's
objectives, hypervolume against the epochs spent, parallel coordinates,
per-trial learning curves, the cells of the knee-point architecture, "Does the
search help?" once analysis.train --sweep and analysis.score --sweep have run,
and a sortable table of every trial."""


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m analysis.report", description=DESCRIPTION)
    parser.add_argument("run_dir", type=Path, help="run directory of a sweep (holds result.json)")
    args = parser.parse_args(argv)
    path = write_report(args.run_dir)
    print(f"report: {path.resolve()}")
    return 0


if __name__ == "__main__":
    run_cli(main)
