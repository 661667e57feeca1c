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
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._common import Normalize
from search_spaces._common import preprocess
from search_spaces._common import stem
from search_spaces.config import CellSpec
from search_spaces.config import SpaceConfig
from search_spaces.fused import FusedMixedOps
from search_spaces.genotype import CELL_TYPES
from search_spaces.genotype import Genotype
from search_spaces.operations import MixedOp

__all__ = ["ALPHA_PREFIX", "EDGE_IMPLS", "SearchCell", "Supernet"]

#: Attribute prefix of the architecture parameters (``alphas_accurate`` ...).
ALPHA_PREFIX = "alphas_"

#: Implementations of a mixed edge: same function, different speed.
EDGE_IMPLS = ("fused", "plain")


class SearchCell(nn.Module):
    """A cell of mixed edges; its output concatenates all intermediate nodes.

    With ``edge_impl="fused"`` the edges are grouped into *waves* by their source
    state: wave 0 holds every edge leaving the two cell inputs (``2 * nodes``
    edges, strided in a reduction cell), wave ``k`` every edge leaving node
    ``k - 1``. Each wave is one :class:`~search_spaces.fused.FusedMixedOps`,
    evaluated as soon as its source is known; ``wave_edges[k]`` lists its edges'
    rows in the cell's alpha matrix (rows ordered node by node, as in DARTS).
    """

    cell_type: str
    wave_rows_0: torch.Tensor

    def __init__(self, spec: SpaceConfig, cell: CellSpec, edge_impl: str = "fused") -> None:
        super().__init__()
        self.fused = edge_impl == "fused"
        self.cell_type = cell.cell_type
        self.reduction = cell.reduction
        self.nodes = spec.nodes
        self.preprocess0, self.preprocess1 = preprocess(cell, affine=False)
        offsets = [sum(2 + m for m in range(i)) for i in range(spec.nodes)]
        if not self.fused:
            self.edges = nn.ModuleList()
            for node in range(spec.nodes):
                for j in range(2 + node):
                    stride = 2 if cell.reduction and j < 2 else 1
                    self.edges.append(MixedOp(cell.c, stride, spec.primitives))
            return
        first = [offsets[i] + j for i in range(spec.nodes) for j in (0, 1)]
        self.wave_edges = [first] + [
            [offsets[i] + k + 1 for i in range(k, spec.nodes)] for k in range(1, spec.nodes)
        ]
        self.waves = nn.ModuleList(
            FusedMixedOps(
                cell.c, 2 if cell.reduction and k == 0 else 1, len(rows), spec.primitives
            )
            for k, rows in enumerate(self.wave_edges)
        )
        for k, rows in enumerate(self.wave_edges):
            self.register_buffer(f"wave_rows_{k}", torch.tensor(rows), persistent=False)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        if not self.fused:
            offset = 0
            for _ in range(self.nodes):
                node = self.edges[offset](states[0], weights[offset])
                for j in range(1, len(states)):
                    node = node + self.edges[offset + j](states[j], weights[offset + j])
                offset += len(states)
                states.append(node)
            return torch.cat(states[2:], dim=1)
        # every node reads both inputs: wave 0's edges are (node, input) pairs
        first = self.waves[0](torch.stack(states, dim=1), weights[self.wave_rows_0], self.nodes)
        # unbind, not indexing: its backward is one stack, where each index's backward
        # would fill a zero tensor of the whole input
        partial = first.reshape(first.shape[0], self.nodes, 2, *first.shape[2:]).sum(2).unbind(1)
        later: list[tuple[torch.Tensor, ...]] = []  # later[j]: wave j + 1, node j's out-edges
        nodes = []
        for k in range(self.nodes):
            node = partial[k]
            for j, out in enumerate(later):
                node = node + out[k - j - 1]
            nodes.append(node)
            if k + 1 < self.nodes:
                rows = getattr(self, f"wave_rows_{k + 1}")
                wave = self.waves[k + 1](node.unsqueeze(1), weights[rows], self.nodes - k - 1)
                later.append(wave.unbind(1))
        return torch.cat(nodes, dim=1)

    @torch.no_grad()
    def copy_edges_from(self, plain: SearchCell) -> None:
        """Take the edges of a cell with plain edges (same spec) into this fused cell."""
        for wave, rows in zip(
            cast("list[FusedMixedOps]", self.waves), self.wave_edges, strict=True
        ):
            wave.copy_from([cast(MixedOp, plain.edges[i]) for i in rows])


class Supernet(nn.Module):
    """The ARNAS supernet.

    Args:
        config: the search space.
        device: where to build parameters (``None`` = CPU); the model never picks a GPU itself.
        edge_impl: ``"fused"`` (:class:`~search_spaces.fused.FusedMixedOps`, fast) or
            ``"plain"`` (:class:`~search_spaces.operations.MixedOp`, one module per
            operation as in the authors' code); both compute the same function.
    """

    def __init__(
        self,
        config: SpaceConfig,
        device: torch.device | str | None = None,
        edge_impl: str = "fused",
    ) -> None:
        super().__init__()
        if edge_impl not in EDGE_IMPLS:
            raise ValueError(
                f"edge_impl must be one of {', '.join(EDGE_IMPLS)}, got '{edge_impl}'"
            )
        self.config = config
        self.edge_impl = edge_impl
        layout = config.layout()
        self.normalize = Normalize(config.input_mean, config.input_std)
        self.stem = stem(config.in_channels, config.stem_multiplier * config.init_channels)
        self.cells = nn.ModuleList(SearchCell(config, cell, edge_impl) for cell in layout)
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
        for cell in cast("list[SearchCell]", self.cells):
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
        return [cell.cell_type for cell in cast("list[SearchCell]", self.cells)]

    @torch.no_grad()
    def copy_from(self, other: Supernet) -> None:
        """Take every weight, statistic and alpha of ``other``: a supernet of the same
        space with the same edge type, or with plain edges (converted to fused ones)."""
        if other.config != self.config:
            raise ValueError("copy_from needs a supernet of the same search space")
        pair = (self.edge_impl, other.edge_impl)
        if pair[0] != pair[1] and pair != ("fused", "plain"):
            raise ValueError(f"cannot copy a supernet with {pair[1]} edges into {pair[0]} edges")
        theirs = other.state_dict()
        for key, value in self.state_dict().items():
            if key in theirs:  # everything but the edges' own parameters and statistics
                value.copy_(theirs[key])
        if pair[0] != pair[1]:
            cells = cast("list[SearchCell]", self.cells)
            for mine, source in zip(cells, cast("list[SearchCell]", other.cells), strict=True):
                mine.copy_edges_from(source)

    def genotype(self) -> Genotype:
        """The discrete architecture the current alphas derive (DARTS rule)."""
        return Genotype.from_alphas(self.arch_parameters(), self.config.primitives)
