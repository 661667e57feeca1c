"""Constraints, a declared hypervolume reference point and warm starts (unit level; the
end-to-end sweeps are in tests/arnas_ray/test_sampler_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from analysis.report import build_report_data
from arnas_common import metrics as M
from arnas_common.errors import ConfigError
from arnas_ray.results import SweepResult
from arnas_ray.sweep.bounds import objective_bounds
from arnas_ray.sweep.config import Limit
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.config import validate_sweep
from arnas_ray.sweep.moasha import continues
from arnas_ray.sweep.optuna_bridge import violations
from arnas_ray.sweep.samplers import make_sampler
from tests.helpers import TINY_SWEEP_FIXED
from tests.helpers import TINY_SWEEP_SPACE
from tests.helpers import write_sweep_run

THREE = {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize", M.PARAMS_M: "minimize"}


def _config(**changes) -> SweepConfig:
    data = {
        "fixed": TINY_SWEEP_FIXED,
        "search_space": TINY_SWEEP_SPACE,
        "objectives": THREE,
        **changes,
    }
    return SweepConfig.from_dict(data)


def test_limits_follow_optunas_sign_convention() -> None:
    assert Limit(max=0.5).violation(0.4) == pytest.approx(-0.1)
    assert Limit(max=0.5).violation(0.7) == pytest.approx(0.2)
    assert Limit(min=0.6).violation(0.5) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="exactly one"):
        Limit.from_dict({"max": 1.0, "min": 0.0})
    limits = {M.PARAMS_M: Limit(max=0.1), M.CLEAN_ACC: Limit(min=0.8)}
    assert violations(limits, {M.PARAMS_M: 0.05, M.CLEAN_ACC: 0.9}) == pytest.approx([-0.05, -0.1])
    assert violations(limits, {M.PARAMS_M: 0.05}) == [pytest.approx(-0.05), math.inf]  # missing


def test_constraints_need_a_sampler_that_takes_them() -> None:
    for name in ("nsga2", "nsga3", "tpe", "gp"):
        sampler = make_sampler(name, {}, 0, [M.PARAMS_M])
        assert isinstance(sampler, optuna.samplers.BaseSampler)
    for name in ("random", "qmc"):
        with pytest.raises(
            ConfigError,
            match=r"constraints need a sampler that takes them \(nsga2, nsga3, tpe, gp\)",
        ):
            make_sampler(name, {}, 0, [M.PARAMS_M])
    with pytest.raises(ConfigError, match="constraints need a sampler"):
        validate_sweep(_config(sampler="random", constraints={M.PARAMS_M: {"max": 0.1}}))
    with pytest.raises(ConfigError, match="unknown metric 'param_m'.*did you mean 'params_m'"):
        _config(constraints={"param_m": {"max": 0.1}})


def test_moasha_ranks_infeasible_trials_after_feasible_ones() -> None:
    """Deb's rule: a feasible trial beats every infeasible one, whatever its objectives;
    infeasible ones are ordered by how much they miss the limits."""
    directions = ["maximize", "maximize"]
    # a dominates everything but misses the limit; b, c feasible; d misses it by more than a
    rung = {
        "a": [0.99, 0.99, 0.5],
        "b": [0.6, 0.4, 0.0],
        "c": [0.4, 0.6, 0.0],
        "d": [0.9, 0.9, 2.0],
    }
    assert continues(rung, "b", directions, 2, constrained=True)
    assert continues(rung, "c", directions, 2, constrained=True)
    assert not continues(rung, "a", directions, 2, constrained=True)
    assert not continues(rung, "d", directions, 2, constrained=True)
    # without constraints a would continue (it dominates)
    plain = {k: v[:2] for k, v in rung.items()}
    assert continues(plain, "a", directions, 2) and not continues(plain, "b", directions, 4)
    # among infeasible trials only: the smaller violation goes on
    worse = {"a": [0.9, 0.9, 0.5], "d": [0.99, 0.99, 2.0]}
    assert continues(worse, "a", directions, 2, constrained=True)
    assert not continues(worse, "d", directions, 2, constrained=True)


def test_infeasible_trials_stay_in_the_record_and_off_the_front(tmp_path) -> None:
    rows = [
        {"trial_id": "big", M.CLEAN_ACC: 0.99, M.PGD_ACC: 0.99, M.PARAMS_M: 0.5},  # best, too big
        {"trial_id": "small", M.CLEAN_ACC: 0.8, M.PGD_ACC: 0.5, M.PARAMS_M: 0.05},
        {"trial_id": "mid", M.CLEAN_ACC: 0.7, M.PGD_ACC: 0.6, M.PARAMS_M: 0.08},
    ]
    run = write_sweep_run(tmp_path / "run", THREE, rows)
    result = SweepResult.read(run)
    flagged = [
        t.__class__(**{**t.__dict__, "feasible": t.trial_id != "big"}) for t in result.trials
    ]
    constrained = result.__class__(
        name="c",
        objectives=THREE,
        trials=tuple(flagged),
        constraints={M.PARAMS_M: {"max": 0.1}},
        reference_point={M.CLEAN_ACC: 0.0, M.PGD_ACC: 0.0, M.PARAMS_M: 0.25},
    )
    constrained.write(run)
    again = SweepResult.read(run)
    assert [t.trial_id for t in again.front()] == [
        "small",
        "mid",
    ]  # big dominates but is infeasible
    assert again.trial("big").feasible is False and again.constraints == {M.PARAMS_M: {"max": 0.1}}
    import json

    assert [t["trial_id"] for t in json.loads((run / "pareto.json").read_text())["trials"]] == [
        "small",
        "mid",
    ]
    report = build_report_data(run)
    assert sorted(report.front) == ["mid", "small"] and report.knee in {"mid", "small"}
    assert report.hypervolume_reference == [0.0, 0.0, 0.25] and report.reference_declared
    from analysis.report.page import render_html

    page = render_html(report)
    assert "Constraints: params_m &lt;= 0.1; 1 infeasible trials" in page
    assert (
        "Hypervolume reference point: clean_acc 0, pgd_acc 0, params_m 0.25 (declared by the "
        "sweep)" in page
    )


def test_reference_point_is_the_spaces_bounds_not_the_trials(tmp_path) -> None:
    """Two sweeps of one space, whatever their trials, measure hypervolume against one point."""
    first, second = _config(seed=0, trials=3), _config(seed=7, trials=12)
    assert first.reference() == second.reference()
    bounds = objective_bounds(first.objectives, first.search_space, first.fixed)
    assert bounds[M.CLEAN_ACC] == 0.0 and bounds[M.PGD_ACC] == 0.0
    # params_m's bound is the largest derivable network: wider robust stages make it larger
    wider = _config(
        search_space={**TINY_SWEEP_SPACE, "robust_width": {"type": "choice", "values": [0.5, 4.0]}}
    )
    assert (
        objective_bounds(wider.objectives, wider.search_space, wider.fixed)[M.PARAMS_M]
        > bounds[M.PARAMS_M]
        > 0
    )
    declared = _config(reference_point={M.PARAMS_M: 1.0})
    assert declared.reference()[M.PARAMS_M] == 1.0 and declared.reference()[M.CLEAN_ACC] == 0.0
    with pytest.raises(ConfigError, match="reference_point names 'train_loss'"):
        _config(reference_point={"train_loss": 1.0})
    # two run directories with different trials, one declared point: comparable hypervolumes
    point = first.reference()
    hv = []
    for k, rows in enumerate(([(0.9, 0.5, 0.005)], [(0.9, 0.5, 0.005), (0.5, 0.9, 0.008)])):
        run = write_sweep_run(
            tmp_path / f"r{k}",
            THREE,
            [
                {"trial_id": f"t{i}", M.CLEAN_ACC: c, M.PGD_ACC: p, M.PARAMS_M: m}
                for i, (c, p, m) in enumerate(rows)
            ],
        )
        result = SweepResult.read(run)
        result.__class__(
            name="r", objectives=THREE, trials=result.trials, reference_point=point
        ).write(run)
        data = build_report_data(run)
        assert data.hypervolume_reference == [point[m] for m in THREE]
        hv.append(data.hypervolume[-1])
    # the same first trial scores the same against the same point; the second sweep adds to it
    assert np.isclose(hv[0], 0.9 * 0.5 * (point[M.PARAMS_M] - 0.005)) and hv[1] > hv[0]


def test_enqueued_configurations_are_checked_against_the_space() -> None:
    ok = _config(enqueue=[{"arch_mode": "weighted", "natural_weight": 0.5, "robust_width": 2.0}])
    validate_sweep(ok)
    with pytest.raises(
        ConfigError, match=r"enqueue\[0\]\.robust_width: 3.0 is not one of the choices"
    ):
        validate_sweep(_config(enqueue=[{"robust_width": 3.0}]))
    with pytest.raises(ConfigError, match=r"enqueue\[0\]\.natural_weight: 2.0 lies outside"):
        validate_sweep(_config(enqueue=[{"natural_weight": 2.0}]))
    with pytest.raises(ConfigError, match="'epochs' is not a search_space key"):
        validate_sweep(_config(enqueue=[{"epochs": 3}]))
