"""The paper's claims section on hand-made sweeps where the answer is known."""

from __future__ import annotations

import pytest

from analysis.claims import build_claims_data
from analysis.claims import operation_shares
from analysis.report import build_report_data
from analysis.report.page import claims_html
from arnas_common import metrics as M
from arnas_ray.results import SweepResult
from search_spaces.genotype import Genotype
from search_spaces.operations import PRIMITIVES
from tests.helpers import write_sweep_run

TWO = {M.CLEAN_ACC: "maximize", M.PGD_ACC: "maximize"}
THREE = {**TWO, M.PARAMS_M: "minimize"}
FIXED = {
    "layers": 5,
    "nodes": 2,
    "robust_start": 0.4,
}  # cells: accurate, reduce, robust, reduce, robust


def _genotype(accurate_op: str, robust_op: str) -> Genotype:
    def cell(op: str) -> list:
        return [(op, 0), (op, 1), (op, 0), (op, 2)]

    return Genotype(
        accurate=cell(accurate_op),
        accurate_concat=(2, 3),
        reduce=cell("avg_pool_3x3"),
        reduce_concat=(2, 3),
        robust=cell(robust_op),
        robust_concat=(2, 3),
    )


def _alphas(op: str, weight: float) -> list[list[float]]:
    row = [(1 - weight) / (len(PRIMITIVES) - 1)] * len(PRIMITIVES)
    row[PRIMITIVES.index(op)] = weight
    return [list(row) for _ in range(5)]  # 2 nodes: 2 + 3 edges


def _rows(n: int) -> list[dict]:
    rows = []
    for k in range(n):
        rows.append(
            {
                "trial_id": f"t{k}",
                M.CLEAN_ACC: 0.9 - 0.05 * k,
                M.PGD_ACC: 0.4 + 0.05 * k,
                M.PARAMS_M: 0.1,
                M.MGDA_GAMMA_MEAN: 0.9 if k % 2 else 0.5,
                "genotype": _genotype("sep_conv_3x3", "max_pool_3x3"),
                "alphas": {
                    "accurate": _alphas("sep_conv_3x3", 0.5),
                    "robust": _alphas("max_pool_3x3", 0.5),
                },
                "sampled": {"mgda_normalization": "none" if k % 2 else "l2"},
            }
        )
    return rows


@pytest.mark.parametrize("objectives", [TWO, THREE])
def test_robust_cells_that_use_other_operations_are_detected(tmp_path, objectives) -> None:
    rows = _rows(6)
    # a search without robust cells (robust_start 1.0) never trained its robust alphas: left out
    rows.append({**_rows(1)[0], "trial_id": "no_robust", "sampled": {"robust_start": 1.0}})
    result = SweepResult.read(write_sweep_run(tmp_path / "run", objectives, rows, fixed=FIXED))
    claims = build_claims_data(result, None, None)
    assert claims.searches_with_robust_cells == 6
    shares = claims.operations.set_index(["source", "cell", "op"])["share"]
    assert (
        shares[("genotype", "accurate", "sep_conv_3x3")] == 1.0
        and shares[("genotype", "robust", "max_pool_3x3")] == 1.0
    )
    assert shares[("alphas", "robust", "max_pool_3x3")] == pytest.approx(0.5)
    # Every search differs the same way: only the observed labelling and its mirror are this far.
    assert claims.operation_tests["genotype"]["distance"] == pytest.approx(1.0)
    assert claims.operation_tests["genotype"]["p_value"] == pytest.approx(2 / 2**6)
    d = 0.5 * 2 * (0.5 - 0.5 / 6)  # two ops, each moved from 0.5 / 6 to 0.5
    assert claims.operation_tests["alphas"]["distance"] == pytest.approx(d)
    by_mode = claims.normalizations.set_index("mgda_normalization")
    assert by_mode.loc["l2", "trials"] == 3 and by_mode.loc["l2", "gamma_mean"] == pytest.approx(
        0.5
    )
    # t1, t3, t5 and no_robust (which samples no normalisation: the default, none)
    assert by_mode.loc["none", "trials"] == 4 and by_mode.loc[
        "none", "gamma_mean"
    ] == pytest.approx(0.8)
    report = build_report_data(tmp_path / "run")
    text = claims_html(report)
    assert "total variation distance 1.000, permutation p = 0.031 (n = 6)" in text
    assert "(a) needs final scores" in text and "MGDA" in text


def test_same_operations_give_no_difference(tmp_path) -> None:
    rows = _rows(5)
    for row in rows:
        row["genotype"] = _genotype("dil_conv_3x3", "dil_conv_3x3")
        row["alphas"] = {
            "accurate": _alphas("dil_conv_3x3", 0.4),
            "robust": _alphas("dil_conv_3x3", 0.4),
        }
    result = SweepResult.read(write_sweep_run(tmp_path / "run", TWO, rows, fixed=FIXED))
    tests = build_claims_data(result, None, None).operation_tests
    assert tests["genotype"] == {"distance": 0.0, "p_value": 1.0, "n": 5}
    assert tests["alphas"]["p_value"] == 1.0


def test_operation_shares_skip_searches_without_both_cells(tmp_path) -> None:
    rows = [{**r, "sampled": {"robust_start": 1.0}} for r in _rows(3)]
    result = SweepResult.read(write_sweep_run(tmp_path / "run", TWO, rows, fixed=FIXED))
    table, arrays = operation_shares(result.finished())
    assert table.empty and arrays == {}
    claims = build_claims_data(result, None, None)
    assert claims.operation_tests == {} and any("only 0 searches" in note for note in claims.notes)
