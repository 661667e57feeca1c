from __future__ import annotations

import json

import pytest
import torch

from search_spaces import PRIMITIVES
from search_spaces import Genotype
from search_spaces import GenotypeError
from search_spaces import UnknownNameError
from search_spaces import genotypes


def test_json_round_trip_for_every_registered_genotype(tmp_path) -> None:
    for name in genotypes.names():
        genotype = genotypes.get(name)
        assert Genotype.from_json(genotype.to_json()) == genotype
        path = genotype.save(tmp_path / f"{name}.json")
        assert Genotype.load(path) == genotype
        assert json.loads(path.read_text())["schema"] == 1


def test_schema_1_fixture_still_loads() -> None:
    from pathlib import Path

    fixture = Path(__file__).parents[1] / "assets" / "genotype_schema1_arnas.json"
    assert Genotype.load(fixture) == genotypes.get("ARNAS")


def _alphas_for(choice: dict[int, tuple[int, int, int]]) -> torch.Tensor:
    """Alphas [14, 7] where edge e has op k with logit v (others 0)."""
    alphas = torch.zeros(14, len(PRIMITIVES))
    for edge, (op, _, value) in choice.items():
        alphas[edge, op] = value
    return alphas


def test_from_alphas_derivation_rule() -> None:
    # Node 2: edges 0,1; node 3: edges 2,3,4; node 4: 5..8; node 5: 9..13.
    strong = {
        1: (3, 0, 5.0),
        0: (2, 0, 4.0),  # node 2: input 1 strongest, then 0
        4: (6, 0, 6.0),
        2: (0, 0, 3.0),  # node 3: input 2, then 0
        8: (4, 0, 7.0),
        6: (5, 0, 2.0),  # node 4: input 3, then 1
        13: (1, 0, 9.0),
        9: (3, 0, 8.0),  # node 5: input 4, then 0
    }
    alphas = _alphas_for(strong)
    genotype = Genotype.from_alphas({"accurate": alphas, "reduce": alphas, "robust": alphas})
    assert genotype.accurate == (
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("dil_conv_5x5", 2),
        ("max_pool_3x3", 0),
        ("sep_conv_5x5", 3),
        ("dil_conv_3x3", 1),
        ("avg_pool_3x3", 4),
        ("sep_conv_3x3", 0),
    )
    assert genotype.accurate_concat == (2, 3, 4, 5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"accurate": [["sep_conv_3x4", 0], ["skip_connect", 1]]}, "did you mean 'sep_conv_3x3'"),
        ({"robust": [["sep_conv_3x3", 0], ["skip_connect", 2]]}, "inputs 0..1"),
        ({"reduce": [["sep_conv_3x3", 0]]}, "two edges per intermediate node"),
        ({"accurate_concat": [2, 9]}, "distinct node indices"),
        ({"colour": 1}, "unknown key"),
        ({"schema": 7}, "schema 7"),
        ({"robust": [["sep_conv_3x3", "0"], ["skip_connect", 1]]}, "must be an integer"),
    ],
)
def test_invalid_genotypes_raise_clear_errors(change, message) -> None:
    data = genotypes.get("DARTS_V2").to_dict()
    if "accurate" in change or "robust" in change or "reduce" in change:
        for cell in ("accurate", "reduce", "robust"):
            if cell not in change:
                data[cell] = [["sep_conv_3x3", 0], ["skip_connect", 1]]
                data[f"{cell}_concat"] = [2]
        data.update({f"{c}_concat": [2] for c in ("accurate", "reduce", "robust")})
    data.update(change)
    with pytest.raises(GenotypeError, match=message):
        Genotype.from_dict(data)


def test_registry_unknown_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'ARNAS'"):
        genotypes.get("ARNSA")
    assert genotypes.get("arnas") == genotypes.get("ARNAS")


def test_describe_mentions_every_cell_type() -> None:
    text = genotypes.get("ARNAS").describe()
    for cell in ("accurate", "reduce", "robust"):
        assert f"{cell} cell" in text
    assert "node 5 = dil_conv_3x3(input 4) + dil_conv_3x3(input 3)" in text
