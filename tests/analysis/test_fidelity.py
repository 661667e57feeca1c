"""Statistics of "Does the search help?" on hand-made data."""

from __future__ import annotations

import json

import pytest

from analysis.baselines import plan_jobs
from analysis.baselines import write_manifest
from analysis.fidelity import build_search_help_data
from analysis.report import build_report_data
from arnas_common import metrics as M
from tests.helpers import write_sweep_run


def _scored_run(tmp_path, objectives, pareto_gap: float):
    rows = [
        {"trial_id": t, "clean_acc": c, "pgd_acc": p, "params_m": m}
        for t, c, p, m in [
            ("a", 0.9, 0.5, 0.1),
            ("b", 0.8, 0.6, 0.2),
            ("c", 0.7, 0.7, 0.3),
            ("d", 0.6, 0.4, 0.05),
            ("e", 0.5, 0.3, 0.5),
            ("f", 0.85, 0.55, 0.15),
        ]
    ]
    run = write_sweep_run(tmp_path / "run", objectives, rows)
    jobs = plan_jobs(run, random=4, also=2)
    write_manifest(jobs, run / "final")
    (run / "scores").mkdir()
    proxies = {r["trial_id"]: r for r in rows}
    for k, job in enumerate(jobs):
        if job.trial_id in proxies and job.group != "random":  # final scores follow the proxies
            clean, robust = (
                proxies[job.trial_id]["clean_acc"] - 0.1,
                proxies[job.trial_id]["pgd_acc"] - 0.2,
            )
            robust += pareto_gap if job.group == "pareto" else 0.0
        else:
            clean, robust = 0.7, 0.3 + 0.01 * k
        record = {
            "name": job.name,
            "clean_acc": clean,
            "autoattack_acc": robust,
            "n_examples": 200,
            "eps": 0.1,
            "attacks": {M.CLEAN_ACC: clean, M.PGD20_ACC: robust + 0.05, M.AUTOATTACK_ACC: robust},
        }
        (run / "scores" / f"{job.name}.json").write_text(json.dumps(record))
    return run


@pytest.mark.parametrize(
    "objectives",
    [
        {"clean_acc": "maximize", "pgd_acc": "maximize"},
        {"clean_acc": "maximize", "pgd_acc": "maximize", "params_m": "minimize"},
    ],
)
def test_search_help_data_for_two_and_three_objectives(tmp_path, objectives) -> None:
    run = _scored_run(tmp_path, objectives, pareto_gap=0.2)
    data = build_search_help_data(run)
    groups = data.networks.groupby("group").size().to_dict()
    # With params_m the smallest network (d) joins the front; e stays dominated.
    front, searched = (4, 2) if len(objectives) == 2 else (5, 1)
    assert groups == {
        "pareto": front,
        "searched": searched,
        "random": 4,
        "published": 6,
    }  # 3 seeds each
    assert data.score_metric == M.AUTOATTACK_ACC and data.n_examples == 200
    assert data.verdict.startswith("Pareto genotypes beat random ones on autoattack_acc")
    pgd = data.correlations.set_index(["proxy", "score"]).loc[(M.PGD_ACC, M.AUTOATTACK_ACC)]
    assert pgd["n"] == 6 and pgd["kendall_tau"] == pytest.approx(1.0)  # finals follow the proxies
    report = build_report_data(run)
    assert report.search_help is not None and sorted(report.front) == sorted(
        j.removeprefix("trial_")
        for j in data.networks.loc[data.networks.group == "pareto", "name"]
    )
    # The claims section: published genotypes with their 3 seeds, compared with the Pareto ones.
    groups_a = report.claims.groups.set_index("group")
    assert groups_a.loc["ARNAS", "n"] == 3 and groups_a.loc["pareto", "n"] == front
    assert groups_a.loc["random", "mean"] == pytest.approx(
        data.networks.loc[data.networks.group == "random", M.AUTOATTACK_ACC].mean()
    )
    assert set(report.claims.comparisons) >= {
        "pareto - ARNAS",
        "pareto - DARTS_V2",
        "ARNAS - DARTS_V2",
    }
    from analysis.report.page import claims_html

    assert "(a) Published vs searched genotypes" in claims_html(report)


def test_no_difference_and_too_few_networks_are_said_plainly(tmp_path) -> None:
    run = _scored_run(tmp_path, {"clean_acc": "maximize", "pgd_acc": "maximize"}, pareto_gap=-0.04)
    assert build_search_help_data(run).verdict.startswith("No significant difference")
    for path in (run / "scores").glob("random_*.json"):
        if path.stem != "random_0":
            path.unlink()
    assert build_search_help_data(run).verdict.startswith("Too few networks to decide")
    assert build_search_help_data(tmp_path / "nothing") is None
