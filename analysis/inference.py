"""Small-sample inference for the report's questions, with intervals valid at small n.

A NAS comparison has few networks per group (a handful of Pareto genotypes, a
dozen random ones), so percentile bootstraps over networks are the wrong tool:
over 2 networks a bootstrap has 3 distinct resamples and an interval far too
narrow. Here, from :mod:`scipy.stats`:

* :func:`compare_groups`: the difference of two group means with Welch's
  t-interval (unequal variances; Welch 1947) and a two-sided permutation test
  (exact over every relabelling when they number at most ``n_resamples``);
  groups smaller than :data:`MIN_PER_GROUP` are "too few to decide";
* :func:`rank_correlation`: Kendall's tau and Spearman's rho with Fisher-z
  intervals (the variances of Fieller, Hartley & Pearson 1957 for tau, Bonett &
  Wright 2000 for rho) and scipy's p-values;
* :func:`paired_distribution_test`: whether two paired distributions differ
  (e.g. the operations of a search's accurate vs robust cells): the total
  variation distance of their means, against its distribution under random
  swaps within each pair (exact when ``2^n <= n_resamples``).

>>> r = compare_groups([0.60, 0.61, 0.62, 0.63], [0.50, 0.51, 0.52, 0.53])
>>> round(r.difference, 3), round(r.p_value, 4)  # the two most extreme of 70 relabellings
(0.1, 0.0286)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "MIN_PER_GROUP",
    "GroupComparison",
    "compare_groups",
    "mean_interval",
    "paired_distribution_test",
    "rank_correlation",
]

#: Fewest networks per group behind a verdict; below it the answer is "too few to decide".
#: The smallest size at which an exact two-sided permutation test can reach p < 0.05
#: (4 vs 4: 2 of 70 relabellings; 3 vs 3 can never go below 2 / 20 = 0.1).
MIN_PER_GROUP = 4
#: Fewest pairs behind a rank correlation's interval (Fieller's variance needs n > 4).
MIN_PAIRS = 5


@dataclass(frozen=True)
class GroupComparison:
    """``mean(a) - mean(b)``: Welch's t-interval and a permutation p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    n_a: int
    n_b: int
    confidence: float = 0.95

    @property
    def decidable(self) -> bool:
        """Whether both groups hold at least :data:`MIN_PER_GROUP` networks."""
        return min(self.n_a, self.n_b) >= MIN_PER_GROUP

    @property
    def half_width(self) -> float:
        """The larger distance from the estimate to an end of the interval."""
        return max(self.difference - self.low, self.high - self.difference)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decidable": self.decidable}


def _finite(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


def mean_interval(values: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the mean (NaN ends below 2 values)."""
    x = _finite(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def compare_groups(
    a: Any, b: Any, *, confidence: float = 0.95, n_resamples: int = 20_000, seed: int = 0
) -> GroupComparison:
    """``mean(a) - mean(b)`` with Welch's t-interval and a two-sided permutation test.

    NaN values are dropped. A group of one value gives NaN interval ends and p-value;
    two groups without any spread give a zero-width interval.
    """
    x, y = _finite(a), _finite(b)
    if len(x) == 0 or len(y) == 0:
        return GroupComparison(math.nan, math.nan, math.nan, math.nan, len(x), len(y), confidence)
    difference = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return GroupComparison(
            difference, math.nan, math.nan, math.nan, len(x), len(y), confidence
        )
    if x.std() == 0 and y.std() == 0:
        low = high = difference
    else:
        with (
            warnings.catch_warnings()
        ):  # one constant group: scipy warns, the interval is still Welch's
            warnings.simplefilter("ignore", RuntimeWarning)
            interval = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)

    def mean_gap(u: np.ndarray, v: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    test = stats.permutation_test(
        (x, y),
        mean_gap,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=seed,
    )
    return GroupComparison(difference, low, high, float(test.pvalue), len(x), len(y), confidence)


def rank_correlation(x: Any, y: Any, *, confidence: float = 0.95) -> dict[str, float]:
    """Kendall's tau-b and Spearman's rho of paired samples, with Fisher-z intervals.

    ``tanh(atanh(r) -+ z * se)`` with ``se^2 = 0.437 / (n - 4)`` for tau (Fieller et
    al. 1957) and ``(1 + rho^2 / 2) / (n - 3)`` for rho (Bonett & Wright 2000); p-values
    are scipy's (exact for tau at small n without ties). Pairs with a NaN are dropped;
    fewer than 3 pairs or a constant side give NaN, intervals need :data:`MIN_PAIRS`.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = len(xs)
    out = dict.fromkeys(
        (
            "kendall_tau",
            "kendall_low",
            "kendall_high",
            "kendall_p",
            "spearman_rho",
            "spearman_low",
            "spearman_high",
            "spearman_p",
        ),
        math.nan,
    )
    out["n"] = n
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return out
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    kendall, spearman = stats.kendalltau(xs, ys), stats.spearmanr(xs, ys)
    for name, result, variance in (
        ("kendall", kendall, 0.437 / (n - 4) if n >= MIN_PAIRS else math.nan),
        (
            "spearman",
            spearman,
            (1 + float(spearman.statistic) ** 2 / 2) / (n - 3) if n >= MIN_PAIRS else math.nan,
        ),
    ):
        r = float(result.statistic)
        out[f"{name}_{'tau' if name == 'kendall' else 'rho'}"] = r
        out[f"{name}_p"] = float(result.pvalue)
        if math.isfinite(variance):
            centre = math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12))
            out[f"{name}_low"] = math.tanh(centre - z * math.sqrt(variance))
            out[f"{name}_high"] = math.tanh(centre + z * math.sqrt(variance))
    return out


def paired_distribution_test(
    first: Any, second: Any, *, n_resamples: int = 20_000, seed: int = 0
) -> dict[str, float]:
    """Do two paired sets of distributions differ? (rows: units, columns: categories)

    The statistic is the total variation distance ``0.5 * sum |mean(first) - mean(second)|``
    between the two mean distributions; under the null each unit's two rows are
    exchangeable, so the permutation distribution swaps them within units (scipy's
    ``permutation_type="samples"``; exact when ``2^n <= n_resamples``).

    Returns:
        ``distance``, ``p_value`` (one-sided: a distance at least as large) and ``n``.
    """
    p, q = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(
            f"need two arrays of the same shape (units, categories), got {p.shape} and {q.shape}"
        )
    n = len(p)
    if n == 0:
        return {"distance": math.nan, "p_value": math.nan, "n": 0}
    if n == 1:  # one pair has no permutation distribution
        return {"distance": float(0.5 * np.abs(p[0] - q[0]).sum()), "p_value": math.nan, "n": 1}
    rows = np.concatenate([p, q])

    def distance(i: np.ndarray, j: np.ndarray, axis: int = -1) -> np.ndarray:
        # i, j: (possibly swapped) row numbers of the first and the second member of each pair.
        gap = rows[i.astype(int)].mean(axis=-2) - rows[j.astype(int)].mean(axis=-2)
        return 0.5 * np.abs(gap).sum(axis=-1)

    index = np.arange(n, dtype=float)
    test = stats.permutation_test(
        (index, index + n),
        distance,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="greater",
        rng=seed,
    )
    return {"distance": float(test.statistic), "p_value": float(test.pvalue), "n": n}
