"""The paper's claims, tested on a sweep's own data — computed as data, before any drawing.

Ou et al. (CVPR 2024) claim, for the ARNAS space and search:

(a) the searched architectures are better than hand-picked or earlier searched
    ones (their Tab. 1-2: ARNAS against DARTS and others); here: ARNAS's published
    genotype vs DARTS_V2 vs this sweep's genotypes, all trained and scored alike
    (:func:`analysis.inference.compare_groups`, seeds of the published ones give
    their spread);
(b) "different structures near input and output": accurate cells (near the
    input) and robust cells (near the output) prefer different operations (their
    Sec. 4.3, Fig. 4); here: the share of each operation per cell type in the
    searched genotypes and in the final alphas, with a paired permutation test
    over searches of whether the robust cells' operations differ from the
    accurate cells' (:func:`analysis.inference.paired_distribution_test`);
(c) the search's proxies select good networks: rank correlations of the
    supernet's validation accuracies and the final scores
    (:mod:`analysis.fidelity`), to be read at ``n >= MIN_FIDELITY_NETWORKS``.

MGDA's balance is shown beside them: the weight ``gamma`` of the natural
objective per trial and, per ``mgda_normalization``, how many trials reach the
front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import pandas as pd

from analysis.inference import GroupComparison
from analysis.inference import compare_groups
from analysis.inference import mean_interval
from analysis.inference import paired_distribution_test
from arnas_common import metrics as M
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialRecord
from search_spaces.config import SpaceConfig

__all__ = [
    "MIN_FIDELITY_NETWORKS",
    "ClaimsData",
    "build_claims_data",
    "operation_shares",
]

#: Networks behind a proxy-fidelity claim the issue asks to read (fewer: shown, flagged).
MIN_FIDELITY_NETWORKS = 12
#: Cell types whose operations claim (b) compares: near the input, near the output.
COMPARED_CELLS = ("accurate", "robust")


@dataclass
class ClaimsData:
    """Everything the report's "The paper's claims" section shows."""

    score_metric: str | None  # the final score of claim (a)
    groups: pd.DataFrame  # claim (a): group, n, mean, low, high, sd (per network)
    comparisons: dict[str, GroupComparison]  # claim (a): "pareto - ARNAS", ...
    operations: pd.DataFrame  # claim (b): source (genotype | alphas), cell, op, share
    operation_tests: dict[str, dict[str, float]]  # claim (b): source -> distance, p_value, n
    searches_with_robust_cells: int  # claim (b): searches whose network has both cell types
    fidelity_networks: int  # claim (c): searched networks with a proxy and a final score
    gamma: pd.DataFrame  # trial_id, mgda_normalization, mgda_gamma_mean, on_front, objectives
    normalizations: pd.DataFrame  # mgda_normalization, trials, on_front, gamma mean/min/max
    notes: list[str] = field(default_factory=list)


def _space(trial: TrialRecord) -> SpaceConfig:
    keys = {
        k: trial.config[k] for k in SpaceConfig.model_fields if trial.config.get(k) is not None
    }
    keys.pop("num_classes", None)  # the classifier does not change which cells are robust
    return SpaceConfig.from_dict(keys, where=f"trial {trial.trial_id}")


def _cell_types_in_use(trial: TrialRecord) -> set[str]:
    return {spec.cell_type for spec in _space(trial).layout()}


def operation_shares(
    trials: Sequence[TrialRecord], cells: Sequence[str] = COMPARED_CELLS
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Share of each operation per cell type, in the genotypes and in the final alphas.

    Only searches whose network has every cell type of ``cells`` count (a search
    without robust cells never trains its robust alphas). Genotype share: the
    fraction of a cell's kept edges that use the operation; alpha share: the mean
    softmax weight of the operation over the cell's edges.

    Returns:
        The long table (source, cell, op, share: means over searches) and, per
        source, an array (searches, cells, ops) for the paired test.
    """
    rows: list[dict[str, Any]] = []
    per_source: dict[str, list[np.ndarray]] = {"genotype": [], "alphas": []}
    primitives: tuple[str, ...] | None = None
    for trial in trials:
        if trial.genotype is None or not set(cells) <= _cell_types_in_use(trial):
            continue
        space_primitives = tuple(_space(trial).primitives)
        if primitives is None:
            primitives = space_primitives
        if space_primitives != primitives:
            continue  # shares over different operation sets do not add up
        index = {op: k for k, op in enumerate(primitives)}
        counts = np.zeros((len(cells), len(primitives)))
        for c, cell in enumerate(cells):
            edges = getattr(trial.genotype, cell)
            for op, _ in edges:
                counts[c, index[op]] += 1
            counts[c] /= max(len(edges), 1)
        per_source["genotype"].append(counts)
        if all(cell in trial.alphas for cell in cells):
            weights = np.array(
                [np.asarray(trial.alphas[cell], dtype=float).mean(axis=0) for cell in cells]
            )
            if weights.shape == counts.shape:
                per_source["alphas"].append(weights)
    arrays = {source: np.array(values) for source, values in per_source.items() if values}
    for source, array in arrays.items():
        mean = array.mean(axis=0)
        for c, cell in enumerate(cells):
            for k, op in enumerate(primitives or ()):
                rows.append({"source": source, "cell": cell, "op": op, "share": float(mean[c, k])})
    return pd.DataFrame(rows, columns=["source", "cell", "op", "share"]), arrays


def _published_vs_searched(networks: pd.DataFrame | None, metric: str | None):
    columns = ["group", "n", "mean", "low", "high", "sd"]
    if networks is None or metric is None or networks.empty:
        return pd.DataFrame(columns=columns), {}
    samples = {
        "pareto": networks.loc[networks["group"] == "pareto", metric],
        "searched (all)": networks.loc[networks["group"].isin(["pareto", "searched"]), metric],
        "random": networks.loc[networks["group"] == "random", metric],
    }
    for name in ("ARNAS", "DARTS_V2"):
        samples[name] = networks.loc[
            (networks["group"] == "published") & (networks["unit"] == name), metric
        ]
    rows = []
    for group, values in samples.items():
        values = values.dropna()
        mean, low, high = mean_interval(values)
        rows.append(
            {
                "group": group,
                "n": len(values),
                "mean": mean,
                "low": low,
                "high": high,
                "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            }
        )
    comparisons = {
        "pareto - ARNAS": compare_groups(samples["pareto"], samples["ARNAS"]),
        "pareto - DARTS_V2": compare_groups(samples["pareto"], samples["DARTS_V2"]),
        "ARNAS - DARTS_V2": compare_groups(samples["ARNAS"], samples["DARTS_V2"]),
        "random - ARNAS": compare_groups(samples["random"], samples["ARNAS"]),
    }
    return pd.DataFrame(rows, columns=columns), comparisons


def _gamma_tables(result: SweepResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    front = {t.trial_id for t in result.front()}
    rows = []
    for trial in result.finished():
        mode = trial.config.get("arch_mode", "mgda")
        rows.append(
            {
                "trial_id": trial.trial_id,
                "arch_mode": mode,
                "mgda_normalization": trial.config.get("mgda_normalization", "none")
                if mode == "mgda"
                else "-",
                "regularization_coefficient": trial.config.get("regularization_coefficient"),
                M.MGDA_GAMMA_MEAN: trial.value(M.MGDA_GAMMA_MEAN),
                "on_front": trial.trial_id in front,
                **{m: trial.value(m) for m in result.objectives},
            }
        )
    gamma = pd.DataFrame(rows)
    if gamma.empty:
        return gamma, pd.DataFrame(
            columns=[
                "mgda_normalization",
                "trials",
                "on_front",
                "gamma_mean",
                "gamma_min",
                "gamma_max",
            ]
        )
    mgda = gamma[gamma["arch_mode"] == "mgda"]
    table = (
        mgda.groupby("mgda_normalization")
        .agg(
            trials=("trial_id", "size"),
            on_front=("on_front", "sum"),
            gamma_mean=(M.MGDA_GAMMA_MEAN, "mean"),
            gamma_min=(M.MGDA_GAMMA_MEAN, "min"),
            gamma_max=(M.MGDA_GAMMA_MEAN, "max"),
        )
        .reset_index()
    )
    return gamma, table


def build_claims_data(
    result: SweepResult, networks: pd.DataFrame | None, score_metric: str | None
) -> ClaimsData:
    """The claims section's data from a sweep and (when scored) its trained networks.

    Args:
        networks: one row per trained network (``analysis.fidelity``'s table: name,
            group, unit, final scores); ``None`` before final training.
        score_metric: the final score claim (a) compares.
    """
    groups, comparisons = _published_vs_searched(networks, score_metric)
    operations, arrays = operation_shares(result.finished())
    tests = {
        source: paired_distribution_test(array[:, 0], array[:, 1])
        for source, array in arrays.items()
    }
    searched = 0
    if networks is not None and not networks.empty and score_metric is not None:
        both = networks[networks["group"].isin(["pareto", "searched"])]
        searched = int(both[score_metric].notna().sum())
    gamma, normalizations = _gamma_tables(result)
    notes = []
    if searched < MIN_FIDELITY_NETWORKS:
        notes.append(
            f"proxy fidelity rests on {searched} searched networks, fewer than the "
            f"{MIN_FIDELITY_NETWORKS} to read it at: train more searches (analysis.train "
            f"--sweep --also K)"
        )
    n_compared = len(next(iter(arrays.values()))) if arrays else 0
    if n_compared < 5:
        notes.append(
            f"only {n_compared} searches have both accurate and robust cells: the operation test "
            "cannot reach p < 0.05 below 5 (2^n swaps)"
        )
    return ClaimsData(
        score_metric=score_metric,
        groups=groups,
        comparisons=comparisons,
        operations=operations,
        operation_tests=tests,
        searches_with_robust_cells=n_compared,
        fidelity_networks=searched,
        gamma=gamma,
        normalizations=normalizations,
        notes=notes,
    )
