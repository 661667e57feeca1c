"""Statistics of "Does the search help?" on hand-made data."""

from __future__ import annotations

import json
import math

import pytest

from analysis.baselines import plan_jobs, write_manifest
from analysis.fidelity import build_search_help_data, mean_difference, rank_correlation
from analysis.report import build_report_data
from arnas_ray.search import metrics as M
from tests.helpers import write_sweep_run


def test_known_rank_correlations() -> None:
    # One swapped neighbour pair in five: tau = (8 - 2) / 10, rho = 1 - 6 * 4 / (5 * 24).
    stats = rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], n_boot=500)
    assert stats["kendall_tau"] == pytest.approx(0.6)
    assert stats["spearman_rho"] == pytest.approx(0.8)
    assert stats["kendall_low"] <= stats["kendall_tau"] <= stats["kendall_high"] <= 1.0
    assert stats["spearman_low"] <= stats["spearman_rho"] <= stats["spearman_high"]
    reverse = rank_correlation([1, 2, 3, 4], [4, 3, 2, 1], n_boot=200)
    assert reverse["kendall_tau"] == -1.0 and reverse["spearman_high"] == -1.0
    assert math.isnan(rank_correlation([1, 2], [1, 2])["kendall_tau"])  # too few pairs


def test_mean_difference_interval_excludes_zero_only_for_a_real_gap() -> None:
    gap = mean_difference([0.60, 0.62, 0.61, 0.63], [0.50, 0.52, 0.51, 0.49], n_boot=1000)
    assert gap["difference"] == pytest.approx(0.11) and gap["low"] > 0
    same = mean_difference([0.50, 0.60, 0.55, 0.45], [0.52, 0.58, 0.47, 0.53], n_boot=1000)
    assert same["low"] < 0 < same["high"]


def _scored_run(tmp_path, objectives, pareto_gap: float):
    rows = [{"trial_id": t, "clean_acc": c, "pgd_acc": p, "params_m": m}
            for t, c, p, m in [("a", 0.9, 0.5, 0.1), ("b", 0.8, 0.6, 0.2), ("c", 0.7, 0.7, 0.3),
                               ("d", 0.6, 0.4, 0.05), ("e", 0.5, 0.3, 0.5)]]  # fmt: skip
    run = write_sweep_run(tmp_path / "run", objectives, rows)
    jobs = plan_jobs(run, random=3, also=2)
    write_manifest(jobs, run / "final")
    (run / "scores").mkdir()
    proxies = {r["trial_id"]: r for r in rows}
    for k, job in enumerate(jobs):
        if job.trial_id in proxies and job.group != "random":  # final scores follow the proxies
            clean, robust = proxies[job.trial_id]["clean_acc"] - 0.1, proxies[job.trial_id]["pgd_acc"] - 0.2
            robust += pareto_gap if job.group == "pareto" else 0.0
        else:
            clean, robust = 0.7, 0.3 + 0.01 * k
        record = {"name": job.name, "clean_acc": clean, "autoattack_acc": robust, "n_examples": 200,
                  "eps": 0.1, "attacks": {M.CLEAN_ACC: clean, M.PGD20_ACC: robust + 0.05,
                                          M.AUTOATTACK_ACC: robust}}  # fmt: skip
        (run / "scores" / f"{job.name}.json").write_text(json.dumps(record))
    return run


@pytest.mark.parametrize("objectives", [
    {"clean_acc": "maximize", "pgd_acc": "maximize"},
    {"clean_acc": "maximize", "pgd_acc": "maximize", "params_m": "minimize"},
])  # fmt: skip
def test_search_help_data_for_two_and_three_objectives(tmp_path, objectives) -> None:
    run = _scored_run(tmp_path, objectives, pareto_gap=0.2)
    data = build_search_help_data(run, n_boot=500)
    groups = data.networks.groupby("group").size().to_dict()
    # With params_m the smallest network (d) joins the front; e stays dominated.
    front, searched = (3, 2) if len(objectives) == 2 else (4, 1)
    assert groups == {"pareto": front, "searched": searched, "random": 3, "published": 2}
    assert data.score_metric == M.AUTOATTACK_ACC and data.n_examples == 200
    assert data.verdict.startswith("Pareto genotypes beat random ones on autoattack_acc")
    pgd = data.correlations.set_index(["proxy", "score"]).loc[(M.PGD_ACC, M.AUTOATTACK_ACC)]
    assert pgd["n"] == 5 and pgd["kendall_tau"] == pytest.approx(1.0)  # finals follow the proxies
    report = build_report_data(run)
    assert report.search_help is not None and sorted(report.front) == sorted(
        j.removeprefix("trial_") for j in data.networks.loc[data.networks.group == "pareto", "name"])


def test_no_difference_and_too_few_networks_are_said_plainly(tmp_path) -> None:
    run = _scored_run(tmp_path, {"clean_acc": "maximize", "pgd_acc": "maximize"}, pareto_gap=-0.04)
    assert build_search_help_data(run, n_boot=500).verdict.startswith("No significant difference")
    for path in (run / "scores").glob("random_*.json"):
        if path.stem != "random_0":
            path.unlink()
    assert build_search_help_data(run).verdict.startswith("Not enough networks")
    assert build_search_help_data(tmp_path / "nothing") is None


def test_vectorised_bootstrap_statistics_equal_scipy() -> None:
    import numpy as np
    from scipy import stats

    from analysis.fidelity import _kendall_tau_b, _spearman

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (50, 7)).astype(float)  # many ties
    y = x + rng.integers(0, 3, (50, 7))
    x[:, 0] += 0.5  # no constant rows
    y[:, 0] += 0.5
    taus, rhos = _kendall_tau_b(x, y), _spearman(x, y)
    for i in range(50):
        assert taus[i] == pytest.approx(stats.kendalltau(x[i], y[i]).statistic)
        assert rhos[i] == pytest.approx(stats.spearmanr(x[i], y[i]).statistic)
