"""Markdown tables of a sweep's run directory (and of its final scores, when there are some),
for benchmarks/RESULTS.md: every trial, the recipe's targets, the "Does the search help?"
verdict and the paper's claims, all read through analysis.report's data (nothing recomputed
by hand).

    python benchmarks/summarize_run.py RUN_DIR [--clean 0.70 --pgd 0.45 --alpha 0.25 --genotypes 3]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from analysis.report import build_report_data
from arnas_common import metrics as M
from arnas_ray.results import SweepResult


def _f(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--clean", type=float, default=0.70)
    parser.add_argument("--pgd", type=float, default=0.45)
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--genotypes", type=int, default=3)
    args = parser.parse_args()
    result = SweepResult.read(args.run)
    data = build_report_data(args.run)
    front = set(data.front)
    keys = [k for k in result.sampled_keys]
    print(
        "| trial | "
        + " | ".join(keys)
        + " | clean_acc | pgd_acc | alpha_max | gamma | params_m | time s | front |"
    )
    print("|" + "---|" * (len(keys) + 8))
    finished = result.finished()
    for t in result.trials:
        values = []
        for key in keys:
            value = t.config
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            values.append(_f(value))
        print(
            f"| {t.trial_id} | " + " | ".join(values) + f" | {_f(t.value(M.CLEAN_ACC))} | "
            f"{_f(t.value(M.PGD_ACC))} | {_f(t.value(M.ALPHA_MAX_WEIGHT))} | "
            f"{_f(t.value(M.MGDA_GAMMA_MEAN), 2)} | {_f(t.value(M.PARAMS_M))} | "
            f"{_f(t.time_total_s, 0)} | {'yes' if t.trial_id in front else ''} |"
        )
    clean = [t.value(M.CLEAN_ACC) for t in finished]
    pgd = [t.value(M.PGD_ACC) for t in finished]
    alpha = [t.value(M.ALPHA_MAX_WEIGHT) for t in finished]
    genotypes = {result.trial(i).genotype for i in front}
    n_val = {
        int(t.value(M.VAL_EXAMPLES)) for t in finished if math.isfinite(t.value(M.VAL_EXAMPLES))
    }
    print()
    print("| target | measured | |")
    print("|---|---|---|")
    rows = [
        (
            f"every finished trial clean_acc >= {args.clean}",
            f"min {min(clean):.3f}",
            min(clean) >= args.clean,
        ),
        (
            f"every finished trial pgd_acc >= {args.pgd}",
            f"min {min(pgd):.3f}",
            min(pgd) >= args.pgd,
        ),
        (
            f"mean largest softmax(alpha) >= {args.alpha}",
            f"min {min(alpha):.3f}, max {max(alpha):.3f}",
            min(alpha) >= args.alpha,
        ),
        (
            f">= {args.genotypes} distinct genotypes on the front",
            f"{len(front)} trials, {len(genotypes)} genotypes",
            len(genotypes) >= args.genotypes,
        ),
        ("validation images", ", ".join(map(str, sorted(n_val))), True),
        ("finished trials", f"{len(finished)} of {len(result.trials)}", True),
    ]
    for name, measured, met in rows:
        print(f"| {name} | {measured} | {'met' if met else '**not met**'} |")
    help_ = data.search_help
    if help_ is not None:
        print()
        print(f"Verdict: {help_.verdict}")
        c = help_.comparison
        print(f"Half-width of the interval: {100 * c.half_width:.1f} points")
        print()
        print("| group | networks | clean_acc | pgd20_acc | autoattack_acc |")
        print("|---|---|---|---|---|")
        nets = help_.networks
        for group, part in nets.groupby("group"):
            print(
                f"| {group} | {len(part)} | {part[M.CLEAN_ACC].mean():.3f} | "
                f"{part[M.PGD20_ACC].mean():.3f} | "
                f"{part[M.AUTOATTACK_ACC].mean():.3f} |"
            )
        print()
        print("| proxy | final | n | Kendall tau [95 % CI] | Spearman rho [95 % CI] |")
        print("|---|---|---|---|---|")
        for r in help_.correlations.itertuples():
            print(
                f"| {r.proxy} | {r.score} | {r.n} | {r.kendall_tau:+.2f} "
                f"[{r.kendall_low:+.2f}, {r.kendall_high:+.2f}] | "
                f"{r.spearman_rho:+.2f} [{r.spearman_low:+.2f}, {r.spearman_high:+.2f}] |"
            )
        for line in help_.warnings:
            print(f"- warning: {line}")
    claims = data.claims
    if claims is not None:
        print()
        if not claims.groups.empty:
            print("| group (claim a) | n | mean | 95 % CI | sd |")
            print("|---|---|---|---|---|")
            for r in claims.groups.itertuples():
                print(
                    f"| {r.group} | {r.n} | {_f(r.mean)} | [{_f(r.low)}, {_f(r.high)}] | "
                    f"{_f(r.sd)} |"
                )
            for name, comp in claims.comparisons.items():
                print(
                    f"- {name}: {100 * comp.difference:+.1f} points [{100 * comp.low:+.1f}, "
                    f"{100 * comp.high:+.1f}], "
                    f"p = {comp.p_value:.3f} ({comp.n_a} vs {comp.n_b})"
                )
        for source, test in claims.operation_tests.items():
            print(
                f"- claim (b), {source}: total variation distance {test['distance']:.3f}, p = "
                f"{test['p_value']:.3f} "
                f"(n = {test['n']})"
            )
        shares = claims.operations
        if not shares.empty:
            print()
            print("| source | cell | " + " | ".join(dict.fromkeys(shares["op"])) + " |")
            print("|---|---|" + "---|" * shares["op"].nunique())
            for (source, cell), part in shares.groupby(["source", "cell"], sort=False):
                print(
                    f"| {source} | {cell} | "
                    + " | ".join(f"{v:.2f}" for v in part["share"])
                    + " |"
                )
        if not claims.normalizations.empty:
            print()
            print("| mgda_normalization | trials | on front | gamma mean | min | max |")
            print("|---|---|---|---|---|---|")
            for r in claims.normalizations.itertuples():
                print(
                    f"| {r.mgda_normalization} | {r.trials} | {int(r.on_front)} | "
                    f"{r.gamma_mean:.2f} | "
                    f"{r.gamma_min:.2f} | {r.gamma_max:.2f} |"
                )
        for note in claims.notes:
            print(f"- note: {note}")


if __name__ == "__main__":
    main()
