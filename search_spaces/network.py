"""The discrete network built from a genotype (final training and evaluation).

Same skeleton as the supernet (Ou et al., CVPR 2024, Sec. 4.1; DARTS CIFAR
network): stem, ``layers`` cells with reductions at ``layers//3`` and
``2*layers//3``, accurate / robust normal cells placed by ``robust_start``,
stage widths by ``robust_width``, optional auxiliary head after the second
reduction, drop-path on non-identity edges.

.. note:: The auxiliary head pools adaptively to 2x2 instead of DARTS' fixed
   ``AvgPool2d(5, stride=3)``, so it works for any input size; on 32x32 inputs
   the parameter count is the same.

>>> from search_spaces import genotypes
>>> from search_spaces.network import Network, count_parameters
>>> net = Network(genotypes.get("ARNAS"), init_channels=8, layers=5, num_classes=10)
>>> count_parameters(net) > 0
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from search_spaces._common import Normalize
from search_spaces._common import preprocess
from search_spaces._common import stem
from search_spaces.config import CellSpec
from search_spaces.config import cell_layout
from search_spaces.config import reduction_indices
from search_spaces.genotype import Genotype
from search_spaces.operations import OPS
from search_spaces.operations import Identity
from search_spaces.spec import NetworkSpec

__all__ = ["AuxiliaryHead", "Cell", "Network", "count_parameters", "drop_path"]


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole examples of a path with probability ``drop_prob`` (rescaled)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class Cell(nn.Module):
    """A discrete cell: two chosen edges per node, concat of the chosen nodes."""

    cell_type: str

    def __init__(self, genotype: Genotype, spec: CellSpec) -> None:
        super().__init__()
        self.cell_type = spec.cell_type
        edges, self.concat = genotype.cell(spec.cell_type)
        self.preprocess0, self.preprocess1 = preprocess(spec, affine=True)
        self.indices = [index for _, index in edges]
        self.ops = nn.ModuleList(
            OPS[op](spec.c, 2 if spec.reduction and index < 2 else 1, True) for op, index in edges
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // 2):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier (adaptive 2x2 pooling)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class Network(nn.Module):
    """Discrete ARNAS network.

    Args:
        genotype: the architecture (accurate, reduce and robust cells).
        init_channels: channels of the first stage (paper: 64 for final training).
        layers: number of cells (paper: 20).
        num_classes: classifier outputs.
        auxiliary: add the auxiliary head after the second reduction.
        drop_path_prob: drop-path probability in training (settable later via
            the ``drop_path_prob`` attribute, e.g. to ramp it up).
        robust_start, robust_width: placement and width rules of
            :class:`~search_spaces.config.SpaceConfig`.
        in_channels, stem_multiplier: input channels and stem width factor.
        input_mean, input_std: normalisation applied inside the model.
        device: where to build parameters.

    Returns (from ``forward``):
        ``(logits, aux_logits)`` when the model is in training mode and has an
        auxiliary head; plain ``logits`` otherwise (evaluation, attacks,
        ``auxiliary=False``).
    """

    def __init__(
        self,
        genotype: Genotype,
        init_channels: int,
        layers: int,
        num_classes: int,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        robust_start: float | None = None,
        robust_width: float = 1.0,
        *,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        input_mean: Sequence[float] | None = None,
        input_std: Sequence[float] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"Network needs at least 3 layers (two reductions), got {layers}")
        self.genotype = genotype
        self.drop_path_prob = drop_path_prob
        multiplier = {
            cell: len(genotype.cell(cell)[1]) for cell in ("accurate", "reduce", "robust")
        }
        layout = cell_layout(
            layers, init_channels, stem_multiplier, multiplier, robust_start, robust_width
        )
        self.normalize = Normalize(input_mean, input_std)
        self.stem = stem(in_channels, stem_multiplier * init_channels)
        self.cells = nn.ModuleList(Cell(genotype, spec) for spec in layout)
        self.auxiliary_index = reduction_indices(layers)[1]
        aux_spec = layout[self.auxiliary_index]
        self.auxiliary_head = (
            AuxiliaryHead(multiplier[aux_spec.cell_type] * aux_spec.c, num_classes)
            if auxiliary
            else None
        )
        last = layout[-1]
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(multiplier[last.cell_type] * last.c, num_classes)
        if device is not None:
            self.to(device)

    def cell_types(self) -> list[str]:
        return [cell.cell_type for cell in cast("list[Cell]", self.cells)]

    @classmethod
    def from_spec(cls, spec: NetworkSpec, device: torch.device | str | None = None) -> Network:
        """The network a :class:`~search_spaces.spec.NetworkSpec` describes."""
        return cls(spec.genotype, **spec.network_kwargs(), device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux_logits = None
        s0 = s1 = self.stem(self.normalize(x))
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.auxiliary_index and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux_logits) if aux_logits is not None else logits


def count_parameters(model: nn.Module, include_auxiliary: bool = False) -> int:
    """Trainable parameters, without the auxiliary head unless asked (DARTS convention)."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if p.requires_grad and (include_auxiliary or "auxiliary" not in name)
    )
