"""The ARNAS supernet: a DARTS supernet with accurate, reduce and robust cells.

Ou et al., CVPR 2024, Sec. 3.1: normal cells before the second reduction are
*accurate* cells, normal cells after it are *robust* cells, and both
reduction cells share the *reduce* architecture; each type has its own
architecture parameters (alphas, ``[edges, ops]``, initialised ``1e-3 *
N(0, 1)``). Every edge is a :class:`~search_spaces.operations.MixedOp`.

>>> import torch
>>> from search_spaces.config import SpaceConfig
>>> from search_spaces.supernet import Supernet
>>> net = Supernet(SpaceConfig(layers=5, init_channels=4))
>>> net(torch.rand(2, 3, 8, 8)).shape
torch.Size([2, 10])
>>> {k: tuple(v.shape) for k, v in net.arch_parameters().items()}
{'accurate': (14, 7), 'reduce': (14, 7), 'robust': (14, 7)}
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._common import Normalize, preprocess, stem
from search_spaces.config import CellSpec, SpaceConfig
from search_spaces.genotype import CELL_TYPES, Genotype
from search_spaces.operations import MixedOp

__all__ = ["ALPHA_PREFIX", "SearchCell", "Supernet"]

#: Attribute prefix of the architecture parameters (``alphas_accurate`` ...).
ALPHA_PREFIX = "alphas_"


class SearchCell(nn.Module):
    """A cell of mixed edges; its output concatenates all intermediate nodes."""

    def __init__(self, spec: SpaceConfig, cell: CellSpec) -> None:
        super().__init__()
        self.cell_type = cell.cell_type
        self.reduction = cell.reduction
        self.nodes = spec.nodes
        self.preprocess0, self.preprocess1 = preprocess(cell, affine=False)
        self.edges = nn.ModuleList()
        for node in range(spec.nodes):
            for j in range(2 + node):
                stride = 2 if cell.reduction and j < 2 else 1
                self.edges.append(MixedOp(cell.c, stride, spec.primitives))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.nodes):
            node = self.edges[offset](states[0], weights[offset])
            for j in range(1, len(states)):
                node = node + self.edges[offset + j](states[j], weights[offset + j])
            offset += len(states)
            states.append(node)
        return torch.cat(states[2:], dim=1)


class Supernet(nn.Module):
    """The ARNAS supernet.

    Args:
        config: the search space.
        device: where to build parameters (``None`` = CPU); the model never picks a GPU itself.
    """

    def __init__(self, config: SpaceConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = config
        layout = config.layout()
        self.normalize = Normalize(config.input_mean, config.input_std)
        self.stem = stem(config.in_channels, config.stem_multiplier * config.init_channels)
        self.cells = nn.ModuleList(SearchCell(config, cell) for cell in layout)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(layout[-1].c * config.nodes, config.num_classes)
        for cell in CELL_TYPES:
            alphas = 1e-3 * torch.randn(config.num_edges, len(config.primitives))
            self.register_parameter(ALPHA_PREFIX + cell, nn.Parameter(alphas))
        if device is not None:
            self.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = {c: F.softmax(a, dim=-1) for c, a in self.arch_parameters().items()}
        s0 = s1 = self.stem(self.normalize(x))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights[cell.cell_type])
        return self.classifier(self.global_pooling(s1).flatten(1))

    def arch_parameters(self) -> dict[str, nn.Parameter]:
        """``{"accurate", "reduce", "robust"}`` → alphas ``[edges, len(primitives)]``."""
        return {cell: getattr(self, ALPHA_PREFIX + cell) for cell in CELL_TYPES}

    def named_weights(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Operation weights with their names (everything but the alphas)."""
        for name, param in self.named_parameters():
            if not name.startswith(ALPHA_PREFIX):
                yield name, param

    def weights(self) -> list[nn.Parameter]:
        """Operation weights (everything but the alphas)."""
        return [p for _, p in self.named_weights()]

    def cell_types(self) -> list[str]:
        """Cell type of every cell, input to output."""
        return [cell.cell_type for cell in self.cells]

    def genotype(self) -> Genotype:
        """The discrete architecture the current alphas derive (DARTS rule)."""
        return Genotype.from_alphas(self.arch_parameters(), self.config.primitives)
