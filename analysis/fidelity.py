"""Does the search help? Searched vs random genotypes, and how well the search's
proxies predict the final scores — computed as data, before any drawing.

Two questions every NAS result should answer (Li & Talwalkar, UAI 2019; Yang et
al., "NAS evaluation is frustratingly hard", ICLR 2020; Yu et al., "Evaluating
the search phase of NAS", ICLR 2020):

* do the Pareto genotypes beat random genotypes of the same space, trained and
  scored identically? The difference of the group means over genotypes (a
  genotype trained with several seeds counts once, at its mean) with Welch's
  t-interval and a permutation test (:func:`analysis.inference.compare_groups`),
  and "too few networks to decide" below
  :data:`~analysis.inference.MIN_PER_GROUP` genotypes per group;
* do the supernet's validation accuracies (the sweep's proxies) rank the
  trained networks as their final test scores do? Kendall's tau and Spearman's
  rho with Fisher-z intervals (:func:`analysis.inference.rank_correlation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.baselines import PUBLISHED
from analysis.baselines import read_manifest
from analysis.inference import MIN_PER_GROUP
from analysis.inference import GroupComparison
from analysis.inference import compare_groups
from analysis.inference import rank_correlation
from arnas_common import metrics as M
from arnas_common.errors import ArnasError
from arnas_common.io import check_name
from arnas_common.io import read_json
from arnas_common.io import short_repr
from arnas_ray.results import SweepResult

__all__ = ["SearchHelpData", "build_search_help_data", "genotype_means"]

#: Search-time proxies and final test scores that are paired.
PROXIES = (M.CLEAN_ACC, M.PGD_ACC)
FINAL_SCORES = (M.CLEAN_ACC, M.PGD20_ACC, M.AUTOATTACK_ACC)


@dataclass
class SearchHelpData:
    """Everything the report's "Does the search help?" section shows."""

    networks: (
        pd.DataFrame
    )  # name, group, unit, seed, trial_id, final scores, search proxies (proxy_*)
    correlations: pd.DataFrame  # proxy, score, n, kendall_*, spearman_* (with p-values)
    comparison: GroupComparison  # Pareto minus random genotypes on `score_metric`
    score_metric: str  # the final score the verdict compares
    verdict: str
    n_examples: int | None  # test examples behind the final scores
    unreadable: list[str] = field(default_factory=list)  # files left out, one line each
    warnings: list[str] = field(default_factory=list)  # evaluation a reviewer would question


def _score_record(path: Path) -> dict[str, Any]:
    """One ``scores/NAME.json`` with its name and numbers checked (untrusted file).

    Raises:
        ArnasError: unreadable, not a score record, or a score that is not a number.
    """
    record = read_json(path, "score record")
    if not isinstance(record, dict):
        raise ArnasError(f"score record '{path}' is not a JSON object")
    check_name(record.get("name", path.stem), "network name", str(path))
    attacks = record.get("attacks") or {}
    if not isinstance(attacks, dict):
        raise ArnasError(f"score record '{path}': 'attacks' is not a mapping")
    for metric in FINAL_SCORES:
        value = attacks.get(metric, record.get(metric))
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ArnasError(
                f"score record '{path}': {metric} is {short_repr(value)}, not a number"
            )
    return record


def _networks(run_dir: Path, unreadable: list[str]) -> pd.DataFrame:
    """One row per readable score record; the problems of the others go to ``unreadable``."""
    try:
        manifest = read_manifest(run_dir / "final")
    except ArnasError as error:
        unreadable.append(str(error))
        manifest = {}
    rows = []
    for path in sorted((run_dir / "scores").glob("*.json")):
        try:
            record = _score_record(path)
        except ArnasError as error:
            unreadable.append(str(error))
            continue
        name = record.get("name", path.stem)
        job = manifest.get(name, {})
        group = job.get("group") or (
            "published"
            if name in PUBLISHED
            else "pareto"
            if name.startswith("trial_")
            else "other"
        )
        row = {
            "name": name,
            "group": group,
            "unit": job.get("unit", name),
            "seed": job.get("seed", 0),
            "trial_id": job.get("trial_id", name.removeprefix("trial_")),
            "n_examples": record.get("n_examples"),
            "eps": record.get("eps"),
        }
        attacks = record.get("attacks") or {}
        checks = record.get("autoattack_checks") or {}
        row["autoattack_flags"] = (
            ", ".join(sorted(k for k, v in checks.items() if v is True))
            if isinstance(checks, dict)
            else ""
        )
        for metric in FINAL_SCORES:
            value = attacks.get(metric, record.get(metric))
            row[metric] = float(value) if value is not None else math.nan
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            *("name", "group", "unit", "seed", "trial_id", "n_examples", "eps"),
            *FINAL_SCORES,
            "autoattack_flags",
        ],
    )


def genotype_means(networks: pd.DataFrame, group: str, metric: str) -> pd.Series:
    """One value per genotype of ``group``: the mean of ``metric`` over its training seeds."""
    part = networks[networks["group"] == group]
    return part.groupby("unit")[metric].mean().dropna()


def build_search_help_data(run_dir: str | Path) -> SearchHelpData | None:
    """Read ``scores/*.json``, ``final/jobs.json`` and the sweep's result;
    ``None`` when nothing is scored yet."""
    run_dir = Path(run_dir)
    unreadable: list[str] = []
    networks = _networks(run_dir, unreadable)
    if networks.empty:
        return None
    trials = SweepResult.read(run_dir).trials
    searched = networks["group"].isin(["pareto", "searched"])
    trial_ids = networks["trial_id"].astype(str)
    for proxy in PROXIES:  # the search's proxies of the networks that came from a search
        values = {t.trial_id: t.value(proxy) for t in trials}
        networks[f"proxy_{proxy}"] = trial_ids.map(values).astype(float).where(searched)
    rows = []
    pairs = networks[searched]
    for proxy in PROXIES:
        for score in FINAL_SCORES:
            rows.append(
                {
                    "proxy": proxy,
                    "score": score,
                    **rank_correlation(pairs[f"proxy_{proxy}"], pairs[score]),
                }
            )
    correlations = pd.DataFrame(rows)
    score_metric = M.AUTOATTACK_ACC if networks[M.AUTOATTACK_ACC].notna().any() else M.PGD20_ACC
    pareto = genotype_means(networks, "pareto", score_metric)
    random = genotype_means(networks, "random", score_metric)
    comparison = compare_groups(pareto, random)
    verdict = verdict_text(comparison, score_metric)
    counts = networks["n_examples"].dropna().unique()
    n_examples = int(counts[0]) if len(counts) == 1 else None
    return SearchHelpData(
        networks,
        correlations,
        comparison,
        score_metric,
        verdict,
        n_examples,
        unreadable,
        evaluation_warnings(networks),
    )


#: PGD-20 accuracy above AutoAttack accuracy by more than this (10 points) suggests that
#: PGD overstates the robustness (gradient masking; Croce & Hein 2020): the report warns.
PGD_AA_MARGIN = 0.10


def evaluation_warnings(networks: pd.DataFrame) -> list[str]:
    """One line per network whose evaluation a reviewer would question: PGD-20 above
    AutoAttack by more than :data:`PGD_AA_MARGIN`, or an AutoAttack sanity check raised."""
    lines = []
    for row in networks.itertuples():
        pgd, aa = getattr(row, M.PGD20_ACC), getattr(row, M.AUTOATTACK_ACC)
        if math.isfinite(pgd) and math.isfinite(aa) and pgd - aa > PGD_AA_MARGIN:
            lines.append(
                f"{row.name}: PGD-20 {100 * pgd:.1f} % vs AutoAttack {100 * aa:.1f} % "
                f"(gap {100 * (pgd - aa):.1f} points > {100 * PGD_AA_MARGIN:.0f}): PGD overstates "
                "its robustness; trust AutoAttack"
            )
        if row.autoattack_flags:
            lines.append(f"{row.name}: AutoAttack's sanity checks flagged {row.autoattack_flags}")
    return lines


def verdict_text(
    comparison: GroupComparison, metric: str, first: str = "Pareto", second: str = "random"
) -> str:
    """One sentence: the difference, its 95 % interval and permutation p, or too few to decide."""
    counts = f"{comparison.n_a} {first} vs {comparison.n_b} {second} genotypes"
    if not comparison.decidable:
        return (
            f"Too few networks to decide whether {first} genotypes beat {second} ones on {metric} "
            f"({counts}; at least {MIN_PER_GROUP} of each needed): train more with "
            "analysis.train --sweep RUN_DIR --random N --also K."
        )
    d, low, high = (100 * v for v in (comparison.difference, comparison.low, comparison.high))
    p = comparison.p_value
    detail = f"95 % CI {low:.1f} to {high:.1f}, Welch; permutation p = {p:.3f}; {counts}"
    if comparison.p_value < 0.05 and d > 0:
        return f"{first} genotypes beat {second} ones on {metric} by {d:.1f} points ({detail})."
    if comparison.p_value < 0.05 and d < 0:
        return f"{first} genotypes trail {second} ones on {metric} by {-d:.1f} points ({detail})."
    return (
        f"No significant difference between {first} and {second} genotypes on {metric}: "
        f"{d:+.1f} points ({detail})."
    )
