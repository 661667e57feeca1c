"""Hyperparameters of the ARNAS search space.

The defaults are the paper's search settings (Ou et al., CVPR 2024; authors'
``train_search.py``): 8 cells, 24 initial channels, 4 intermediate nodes, stem
multiplier 3, the 7 ARNAS operations, robust cells after the second reduction,
and a robust stage as wide as the middle stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from arnas_common.config_base import Float
from arnas_common.config_base import FrozenConfig
from arnas_common.config_base import Int
from arnas_common.errors import near_miss
from search_spaces.operations import OPS
from search_spaces.operations import PRIMITIVES

__all__ = ["CellSpec", "SpaceConfig", "cell_layout", "reduction_indices"]

CellType = Literal["accurate", "reduce", "robust"]

#: Valid range of ``robust_width`` (channel factor of the last stage).
ROBUST_WIDTH_RANGE = (0.25, 4.0)


class RobustPlacement(FrozenConfig):
    """Where the robust cells sit and how wide their stage is (search and final networks)."""

    robust_start: Float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="robust normal cells from this fraction of depth (None = after the 2nd "
        "reduction)",
    )
    robust_width: Float = Field(
        1.0,
        ge=ROBUST_WIDTH_RANGE[0],
        le=ROBUST_WIDTH_RANGE[1],
        description="last stage width / middle stage width (1.0 = paper, 2.0 = DARTS)",
    )


class SpaceConfig(RobustPlacement):
    """The supernet's macro skeleton and its search-space hyperparameters.

    Attributes:
        layers: number of cells (>= 3); reductions at ``layers//3`` and ``2*layers//3``.
        init_channels: channels of the first stage's cells.
        nodes: intermediate nodes per cell.
        stem_multiplier: stem channels = ``stem_multiplier * init_channels``.
        primitives: candidate operations of every edge.
        num_classes, in_channels: classifier outputs and image channels.
        input_mean, input_std: per-channel normalisation applied inside the
            model (inputs stay in [0, 1] pixel space); ``None`` = none.
        robust_start: where robust normal cells begin, as a fraction of depth in
            [0, 1]: normal cell ``i`` is robust iff ``i >= ceil(robust_start *
            layers)``. ``None`` = the paper's placement, right after the second
            reduction. ``0`` makes every normal cell robust, ``1`` none.
        robust_width: channels of the stage after the second reduction relative
            to the middle stage. 1.0 = the paper, 2.0 = plain DARTS doubling.
    """

    layers: Int = Field(
        8, ge=3, le=100, description="cells; reductions at layers//3 and 2*layers//3"
    )
    init_channels: Int = Field(
        24, ge=2, le=2048, description="channels of the first stage's cells"
    )
    nodes: Int = Field(4, ge=1, le=10, description="intermediate nodes per cell")
    stem_multiplier: Int = Field(
        3, ge=1, le=16, description="stem channels = stem_multiplier * init_channels"
    )
    primitives: tuple[str, ...] = Field(
        PRIMITIVES, description="candidate operations of every edge"
    )
    num_classes: Int = Field(10, ge=2, description="classifier outputs (from the dataset)")
    in_channels: Int = Field(3, ge=1, description="image channels (from the dataset)")
    input_mean: tuple[float, ...] | None = Field(
        None, description="per-channel mean normalised inside the model (from the dataset)"
    )
    input_std: tuple[float, ...] | None = Field(
        None, description="per-channel std normalised inside the model (from the dataset)"
    )

    @field_validator("primitives")
    @classmethod
    def _known_primitives(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one operation")
        for name in value:
            if name not in OPS:
                raise ValueError(
                    f"unknown operation '{name}'{near_miss(name, OPS)}; known: {', '.join(OPS)}"
                )
        if len(set(value)) != len(value):
            raise ValueError("lists an operation twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SpaceConfig:
        for name in ("input_mean", "input_std"):
            stats = getattr(self, name)
            if stats is not None and len(stats) != self.in_channels:
                raise ValueError(
                    f"{name} has {len(stats)} values but in_channels is {self.in_channels}"
                )
        if self.input_std is not None and min(self.input_std) <= 0:
            raise ValueError("input_std must be positive")
        cell_layout(
            self.layers,
            self.init_channels,
            self.stem_multiplier,
            self.nodes,
            self.robust_start,
            self.robust_width,
        )
        return self

    @property
    def num_edges(self) -> int:
        """Edges per cell: 2 + 3 + ... + (nodes + 1); 14 for 4 nodes."""
        return sum(2 + i for i in range(self.nodes))

    def layout(self) -> list[CellSpec]:
        return cell_layout(
            self.layers,
            self.init_channels,
            self.stem_multiplier,
            self.nodes,
            self.robust_start,
            self.robust_width,
        )


@dataclass(frozen=True)
class CellSpec:
    """Placement and widths of one cell in the network skeleton."""

    index: int
    cell_type: CellType
    c_prev_prev: int
    c_prev: int
    c: int
    reduction: bool
    reduction_prev: bool


def reduction_indices(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells (DARTS: ``layers//3`` and ``2*layers//3``)."""
    return layers // 3, 2 * layers // 3


def robust_start_index(layers: int, robust_start: float | None) -> int:
    """First cell index whose normal cells are robust cells."""
    if robust_start is None:
        return reduction_indices(layers)[1] + 1
    return math.ceil(robust_start * layers - 1e-9)


def cell_layout(
    layers: int,
    init_channels: int,
    stem_multiplier: int,
    multiplier: int | Mapping[str, int],
    robust_start: float | None,
    robust_width: float,
) -> list[CellSpec]:
    """Cell types and channel widths of the ARNAS skeleton.

    Channels double at the first reduction. At the second reduction the stage
    width becomes ``round(robust_width * middle width)``: the authors' code
    doubles and halves there (``robust_width = 1``), DARTS doubles (``2``).
    Shared by :class:`~search_spaces.supernet.Supernet` and
    :class:`~search_spaces.network.Network` so both follow the same rules.

    Args:
        multiplier: nodes concatenated into a cell's output, for all cell types
            or per cell type.

    Raises:
        ValueError: when a width rounds below 2 channels.
    """
    first, second = reduction_indices(layers)
    robust_from = robust_start_index(layers, robust_start)
    middle = 2 * init_channels
    last = round(middle * robust_width)
    # Factorized reduce splits its output in two halves, so widths must be even.
    last += last % 2
    if last < 2:
        raise ValueError(
            f"robust_width={robust_width} with init_channels={init_channels} leaves "
            f"{last} channels after the second reduction; increase either"
        )
    c_prev_prev = c_prev = stem_multiplier * init_channels
    c = init_channels
    specs, reduction_prev = [], False
    for i in range(layers):
        reduction = i in (first, second)
        if i == first:
            c = middle
        elif i == second:
            c = last
        if reduction:
            cell_type: CellType = "reduce"
        else:
            cell_type = "robust" if i >= robust_from else "accurate"
        specs.append(CellSpec(i, cell_type, c_prev_prev, c_prev, c, reduction, reduction_prev))
        width = multiplier if isinstance(multiplier, int) else multiplier[cell_type]
        c_prev_prev, c_prev, reduction_prev = c_prev, width * c, reduction
    return specs
