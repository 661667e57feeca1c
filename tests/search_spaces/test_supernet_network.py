from __future__ import annotations

import pytest
import torch

from search_spaces import Network
from search_spaces import SpaceConfig
from search_spaces import Supernet
from search_spaces import count_parameters
from search_spaces import genotypes
from search_spaces.config import cell_layout


def test_cell_layout_of_eight_layers_matches_paper() -> None:
    net = Supernet(SpaceConfig(layers=8, init_channels=4))
    types = net.cell_types()
    assert [i for i, t in enumerate(types) if t == "reduce"] == [2, 5]
    assert [i for i, t in enumerate(types) if t == "accurate"] == [0, 1, 3, 4]
    assert [i for i, t in enumerate(types) if t == "robust"] == [6, 7]


def test_robust_stage_keeps_middle_width_by_default_and_doubles_at_two() -> None:
    paper = cell_layout(8, 16, 3, 4, None, 1.0)
    darts = cell_layout(8, 16, 3, 4, None, 2.0)
    assert [c.c for c in paper] == [16, 16, 32, 32, 32, 32, 32, 32]
    assert [c.c for c in darts] == [16, 16, 32, 32, 32, 64, 64, 64]


def test_arch_parameters_shape_and_separation_from_weights() -> None:
    net = Supernet(SpaceConfig(layers=5, init_channels=4))
    alphas = net.arch_parameters()
    assert set(alphas) == {"accurate", "reduce", "robust"}
    assert all(tuple(a.shape) == (14, 7) for a in alphas.values())
    alpha_ids = {id(a) for a in alphas.values()}
    assert not alpha_ids & {id(w) for w in net.weights()}
    assert len(net.weights()) + 3 == len(list(net.parameters()))


@pytest.mark.parametrize(
    ("robust_start", "robust_width"),
    [(None, 1.0), (0.0, 1.0), (0.5, 2.0), (1.0, 0.5), (0.3, 0.25), (0.9, 4.0)],
)
def test_supernet_and_network_forward_backward(robust_start, robust_width) -> None:
    space = SpaceConfig(
        layers=6, init_channels=4, nodes=4, robust_start=robust_start, robust_width=robust_width
    )
    net = Supernet(space)
    x = torch.rand(2, 3, 16, 16)
    out = net(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    used = set(net.cell_types())
    for cell, alpha in net.arch_parameters().items():
        assert (alpha.grad is not None) == (cell in used)
    model = Network(
        net.genotype(),
        4,
        6,
        10,
        auxiliary=True,
        drop_path_prob=0.2,
        robust_start=robust_start,
        robust_width=robust_width,
    )
    assert model.cell_types() == net.cell_types()
    model.train()
    logits, aux = model(x)
    assert logits.shape == aux.shape == (2, 10)
    (logits.sum() + aux.sum()).backward()
    model.eval()
    assert model(x).shape == (2, 10)


def test_robust_start_places_robust_cells() -> None:
    assert Supernet(SpaceConfig(layers=6, init_channels=4, robust_start=0.0)).cell_types() == [
        "robust",
        "robust",
        "reduce",
        "robust",
        "reduce",
        "robust",
    ]
    assert (
        "robust"
        not in Supernet(SpaceConfig(layers=6, init_channels=4, robust_start=1.0)).cell_types()
    )


def test_inputs_are_normalised_inside_the_model() -> None:
    space = SpaceConfig(layers=3, init_channels=4, input_mean=(0.5,) * 3, input_std=(0.25,) * 3)
    net = Supernet(space)
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(net.normalize(x), (x - 0.5) / 0.25)


# Published parameter counts (millions, CIFAR-10, DARTS widths: 36 channels, doubling).
PUBLISHED_MILLIONS = {"DARTS_V2": 3.3, "PDARTS": 3.4, "ADVRUSH": 4.2}


@pytest.mark.parametrize("name", genotypes.names())
def test_every_registered_genotype_builds(name: str) -> None:
    genotype = genotypes.get(name)
    assert genotypes.citation(name)
    net = Network(genotype, init_channels=8, layers=5, num_classes=10)
    net.eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    if name in PUBLISHED_MILLIONS:
        big = Network(genotype, 36, 20, 10, robust_width=2.0)
        assert count_parameters(big) / 1e6 == pytest.approx(PUBLISHED_MILLIONS[name], abs=0.06)


def test_arnas_network_parameter_count_matches_readme() -> None:
    net = Network(genotypes.get("ARNAS"), init_channels=64, layers=20, num_classes=10)
    assert count_parameters(net) == 4_520_394
