"""Small-sample inference against hand-made data where the right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.inference import MIN_PER_GROUP
from analysis.inference import compare_groups
from analysis.inference import mean_interval
from analysis.inference import paired_distribution_test
from analysis.inference import rank_correlation


def test_group_difference_welch_interval_and_exact_permutation_p() -> None:
    a, b = [0.60, 0.61, 0.62, 0.63], [0.50, 0.51, 0.52, 0.53]
    result = compare_groups(a, b)
    assert result.difference == pytest.approx(0.10)
    # Equal spreads: Welch's df = 6, se = sqrt(2 * var / 4) with var = 1/6000.
    half = stats.t.ppf(0.975, 6) * math.sqrt(2 * (1 / 6000) / 4)
    assert (result.low, result.high) == pytest.approx((0.10 - half, 0.10 + half))
    # Exact: of the C(8, 4) = 70 relabellings, only the observed one and its mirror are as extreme.
    assert result.p_value == pytest.approx(2 / 70)
    assert result.decidable and result.half_width == pytest.approx(half)


def test_no_gap_is_not_significant_and_the_interval_covers_zero() -> None:
    result = compare_groups([0.50, 0.60, 0.55, 0.45], [0.52, 0.58, 0.47, 0.53])
    assert result.low < 0 < result.high and result.p_value > 0.5


def test_two_networks_are_too_few_and_their_interval_is_wide() -> None:
    """The issue's case: 7 Pareto vs 2 random. A percentile bootstrap over 2 values has 3
    distinct resamples and gave a 6-point interval; Welch's interval over 2 is honest."""
    pareto = [0.60, 0.62, 0.58, 0.61, 0.63, 0.59, 0.60]
    random = [0.66, 0.68]
    result = compare_groups(pareto, random)
    assert not result.decidable and MIN_PER_GROUP == 4
    assert result.high - result.low > 0.1  # df ~ 1.6: t quantile above 6
    assert (
        compare_groups([0.6], [0.5, 0.4]).p_value != compare_groups([0.6], [0.5, 0.4]).p_value
    )  # NaN


def test_mean_interval_is_students() -> None:
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(mean_interval([1.0])[1])


def test_rank_correlation_fisher_intervals() -> None:
    x = np.arange(12)
    y = x + np.array([0, 3, -2, 1, 0, 4, -3, 2, 0, 1, -1, 0])
    got = rank_correlation(x, y)
    tau, rho = stats.kendalltau(x, y).statistic, stats.spearmanr(x, y).statistic
    assert got["kendall_tau"] == pytest.approx(tau) and got["spearman_rho"] == pytest.approx(rho)
    z = stats.norm.ppf(0.975)
    assert got["kendall_low"] == pytest.approx(
        math.tanh(math.atanh(tau) - z * math.sqrt(0.437 / 8))
    )
    assert got["spearman_high"] == pytest.approx(
        math.tanh(math.atanh(rho) + z * math.sqrt((1 + rho**2 / 2) / 9))
    )
    assert got["kendall_p"] == pytest.approx(stats.kendalltau(x, y).pvalue)
    # One swapped neighbour pair in five: tau = (8 - 2) / 10, rho = 1 - 6 * 4 / (5 * 24).
    five = rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert five["kendall_tau"] == pytest.approx(0.6) and five["spearman_rho"] == pytest.approx(0.8)
    assert math.isnan(
        rank_correlation([1, 2, 3, 4], [4, 3, 2, 1])["kendall_low"]
    )  # n < 5: no interval
    assert math.isnan(rank_correlation([1, 2], [1, 2])["kendall_tau"])


def test_paired_distribution_test_exact_on_hand_made_cells() -> None:
    """8 searches whose robust cells all put 0.5 more on op 0 than their accurate cells: only
    the observed labelling and its mirror give the largest distance, p = 2 / 2^8... one-sided:
    the mirror gives the same distance, so p = 2 / 256."""
    rng = np.random.default_rng(0)
    accurate = rng.dirichlet(np.ones(7), 8)
    robust = accurate.copy()
    robust[:, 0] += 0.5
    robust /= robust.sum(axis=1, keepdims=True)
    result = paired_distribution_test(accurate, robust)
    assert result["n"] == 8 and result["p_value"] == pytest.approx(2 / 256)
    expected = 0.5 * np.abs(accurate.mean(0) - robust.mean(0)).sum()
    assert result["distance"] == pytest.approx(expected)
    same = paired_distribution_test(accurate, accurate)
    assert same["distance"] == 0.0 and same["p_value"] == 1.0
    single = paired_distribution_test(accurate[:1], robust[:1])  # one search: no test, a distance
    assert single["n"] == 1 and math.isnan(single["p_value"]) and single["distance"] > 0
    with pytest.raises(ValueError, match="same shape"):
        paired_distribution_test(accurate, robust[:3])
