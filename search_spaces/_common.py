"""Pieces shared by the supernet and the discrete network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.config import CellSpec
from search_spaces.operations import FactorizedReduce
from search_spaces.operations import ReLUConvBN


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` inside the model, so inputs stay in [0, 1]."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        super().__init__()
        self.enabled = mean is not None or std is not None
        channels = len(mean if mean is not None else std or ())
        mean_t = torch.tensor(mean if mean is not None else [0.0] * channels)
        std_t = torch.tensor(std if std is not None else [1.0] * channels)
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std_t.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std if self.enabled else x


def stem(in_channels: int, channels: int) -> nn.Sequential:
    """DARTS CIFAR stem: conv 3x3 + BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
    )


def preprocess(spec: CellSpec, affine: bool) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to the cell's width (and resolution)."""
    pre0: nn.Module = (
        FactorizedReduce(spec.c_prev_prev, spec.c, affine=affine)
        if spec.reduction_prev
        else ReLUConvBN(spec.c_prev_prev, spec.c, 1, 1, 0, affine=affine)
    )
    return pre0, ReLUConvBN(spec.c_prev, spec.c, 1, 1, 0, affine=affine)
