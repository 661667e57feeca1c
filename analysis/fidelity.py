"""Does the search help? Searched vs random genotypes, and how well the search's
proxies predict the final scores — computed as data, before any drawing.

Two questions every NAS result should answer (Li & Talwalkar, UAI 2019; Yang et
al., "NAS evaluation is frustratingly hard", ICLR 2020; Yu et al., "Evaluating
the search phase of NAS", ICLR 2020):

* do the Pareto genotypes beat random genotypes of the same space, trained and
  scored identically? :func:`mean_difference` with a bootstrap interval;
* do the supernet's validation accuracies (the sweep's proxies) rank the
  trained networks as their final test scores do? :func:`rank_correlation`:
  Kendall's tau and Spearman's rho (``scipy.stats``) with percentile-bootstrap
  95 % intervals over resampled networks.

>>> rank_correlation([1, 2, 3, 4], [10, 20, 30, 40], n_boot=200)["kendall_tau"]
1.0
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.baselines import PUBLISHED, read_manifest
from arnas_ray.results import SweepResult
from arnas_ray.search import metrics as M

__all__ = ["SearchHelpData", "build_search_help_data", "mean_difference", "rank_correlation"]

#: Search-time proxies and final test scores that are paired.
PROXIES = (M.CLEAN_ACC, M.PGD_ACC)
FINAL_SCORES = (M.CLEAN_ACC, M.PGD20_ACC, M.AUTOATTACK_ACC)


def _interval(values: list[float], confidence: float) -> tuple[float, float]:
    finite = np.asarray([v for v in values if math.isfinite(v)])
    if len(finite) == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))


def rank_correlation(x, y, *, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Kendall's tau and Spearman's rho of paired samples, with bootstrap intervals.

    Pairs are resampled with replacement; resamples with a constant side (no
    defined correlation) are skipped. Fewer than 3 pairs give NaN everywhere.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    out = {"n": n, "kendall_tau": math.nan, "kendall_low": math.nan, "kendall_high": math.nan,
           "spearman_rho": math.nan, "spearman_low": math.nan, "spearman_high": math.nan}  # fmt: skip
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    out["kendall_tau"] = float(stats.kendalltau(x, y).statistic)
    out["spearman_rho"] = float(stats.spearmanr(x, y).statistic)
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    xs, ys = x[idx], y[idx]
    keep = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    out["kendall_low"], out["kendall_high"] = _interval(list(_kendall_tau_b(xs[keep], ys[keep])), confidence)
    out["spearman_low"], out["spearman_high"] = _interval(list(_spearman(xs[keep], ys[keep])), confidence)
    return out


def _kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b (as ``scipy.stats.kendalltau``) of each row pair, vectorised."""
    dx = np.sign(x[:, :, None] - x[:, None, :])
    dy = np.sign(y[:, :, None] - y[:, None, :])
    upper = np.triu(np.ones(x.shape[1], dtype=bool), 1)
    s = (dx * dy)[:, upper].sum(axis=1)
    tied_x = (dx[:, upper] != 0).sum(axis=1)
    tied_y = (dy[:, upper] != 0).sum(axis=1)
    return s / np.sqrt(tied_x * tied_y)


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho (Pearson's r of average ranks) of each row pair, vectorised."""
    rx = stats.rankdata(x, axis=1) - (x.shape[1] + 1) / 2
    ry = stats.rankdata(y, axis=1) - (y.shape[1] + 1) / 2
    return (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))


def mean_difference(a, b, *, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """``mean(a) - mean(b)`` with a bootstrap interval (each group resampled on its own)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return {"difference": math.nan, "low": math.nan, "high": math.nan}
    rng = np.random.default_rng(seed)
    draws = [float(rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean()) for _ in range(n_boot)]
    low, high = _interval(draws, confidence)
    return {"difference": float(a.mean() - b.mean()), "low": low, "high": high}


@dataclass
class SearchHelpData:
    """Everything the report's "Does the search help?" section shows."""

    networks: pd.DataFrame  # name, group, trial_id, final scores, and the search proxies (proxy_*)
    correlations: pd.DataFrame  # proxy, score, n, kendall_*, spearman_*
    comparison: dict[str, float]  # Pareto minus random on `score_metric`
    score_metric: str  # the final score the verdict compares
    verdict: str
    n_examples: int | None  # test examples behind the final scores


def _networks(run_dir: Path) -> pd.DataFrame:
    manifest = read_manifest(run_dir / "final")
    rows = []
    for path in sorted((run_dir / "scores").glob("*.json")):
        record = json.loads(path.read_text())
        name = record.get("name", path.stem)
        job = manifest.get(name, {})
        group = job.get("group") or ("published" if name in PUBLISHED else
                                     "pareto" if name.startswith("trial_") else "other")  # fmt: skip
        row = {"name": name, "group": group, "trial_id": job.get("trial_id", name.removeprefix("trial_")),
               "n_examples": record.get("n_examples"), "eps": record.get("eps")}  # fmt: skip
        attacks = record.get("attacks") or {}
        for metric in FINAL_SCORES:
            value = attacks.get(metric, record.get(metric))
            row[metric] = float(value) if value is not None else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["name", "group", "trial_id", "n_examples", "eps", *FINAL_SCORES])


def build_search_help_data(run_dir: str | Path, *, n_boot: int = 2000, seed: int = 0) -> SearchHelpData | None:
    """Read ``scores/*.json``, ``final/jobs.json`` and the sweep's result;
    ``None`` when nothing is scored yet."""
    run_dir = Path(run_dir)
    networks = _networks(run_dir)
    if networks.empty:
        return None
    trials = SweepResult.read(run_dir).trials
    searched = networks["group"].isin(["pareto", "searched"])
    for proxy in PROXIES:
        values = {t.trial_id: t.value(proxy) for t in trials}
        networks[f"proxy_{proxy}"] = math.nan
        networks.loc[searched, f"proxy_{proxy}"] = networks.loc[searched, "trial_id"].astype(str).map(values)
    rows = []
    pairs = networks[searched]
    for proxy in PROXIES:
        for score in FINAL_SCORES:
            both = pairs[[f"proxy_{proxy}", score]].dropna()
            stats_ = rank_correlation(both.iloc[:, 0], both.iloc[:, 1], n_boot=n_boot, seed=seed)
            rows.append({"proxy": proxy, "score": score, **stats_})
    correlations = pd.DataFrame(rows)
    score_metric = M.AUTOATTACK_ACC if networks[M.AUTOATTACK_ACC].notna().any() else M.PGD20_ACC
    pareto = networks.loc[networks["group"] == "pareto", score_metric].dropna()
    random = networks.loc[networks["group"] == "random", score_metric].dropna()
    comparison = mean_difference(pareto, random, n_boot=n_boot, seed=seed)
    verdict = _verdict(comparison, score_metric, len(pareto), len(random))
    counts = networks["n_examples"].dropna().unique()
    n_examples = int(counts[0]) if len(counts) == 1 else None
    return SearchHelpData(networks, correlations, comparison, score_metric, verdict, n_examples)


def _verdict(comparison: dict[str, float], metric: str, n_pareto: int, n_random: int) -> str:
    if n_pareto < 2 or n_random < 2:
        return (f"Not enough networks to compare Pareto and random genotypes on {metric} "
                f"({n_pareto} Pareto, {n_random} random; at least 2 of each needed): "
                "train more with analysis.train --sweep RUN_DIR --random N.")  # fmt: skip
    d, low, high = (100 * comparison[k] for k in ("difference", "low", "high"))
    counts = f"{n_pareto} Pareto vs {n_random} random genotypes"
    if low > 0:
        return f"Pareto genotypes beat random ones on {metric} by {d:.1f} points (95 % CI {low:.1f} to {high:.1f}; {counts})."
    if high < 0:
        return f"Pareto genotypes trail random ones on {metric} by {-d:.1f} points (95 % CI {low:.1f} to {high:.1f}; {counts})."
    return (f"No significant difference between Pareto and random genotypes on {metric}: "
            f"{d:+.1f} points (95 % CI {low:.1f} to {high:.1f}; {counts}).")
