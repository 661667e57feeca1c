"""Discrete ARNAS architectures: one cell description per cell type.

A genotype lists, for every intermediate node of a cell, its two incoming
edges as ``(operation, input_index)`` pairs (inputs 0 and 1 are the two
previous cells, input ``k >= 2`` is node ``k``). ARNAS (Ou et al., CVPR 2024,
Sec. 3.1) has three cell types: *accurate* normal cells near the input,
*robust* normal cells near the output and *reduce* cells.

Genotypes are plain validated data: JSON files carry ``"schema": 1`` and are
never ``eval``-ed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import torch

from arnas_common.errors import GenotypeError
from arnas_common.errors import near_miss
from arnas_common.io import atomic_write_text
from search_spaces.operations import PRIMITIVES

__all__ = ["CELL_TYPES", "SCHEMA_VERSION", "Edge", "Genotype"]

#: The three cell types of the ARNAS search space, in a fixed order.
CELL_TYPES: tuple[str, ...] = ("accurate", "reduce", "robust")
SCHEMA_VERSION = 1

Edge = tuple[str, int]


def _edges(value: Any, cell: str) -> tuple[Edge, ...]:
    try:
        edges = tuple((str(op), index) for op, index in value)
    except (TypeError, ValueError):
        raise GenotypeError(
            f"genotype.{cell}: expected a list of [operation, input_index] pairs, got {value!r}"
        ) from None
    for op, index in edges:
        if isinstance(index, bool) or not isinstance(index, int):
            raise GenotypeError(
                f"genotype.{cell}: input index of '{op}' must be an integer, got {index!r}"
            )
    return edges


@dataclass(frozen=True)
class Genotype:
    """An ARNAS architecture: edges and output nodes of each cell type.

    Args:
        accurate: edges of the accurate normal cells, two per intermediate node.
        accurate_concat: node indices concatenated to form the cell output.
        reduce, reduce_concat: the same for the reduction cells.
        robust, robust_concat: the same for the robust normal cells.
        primitives: the operation names the genotype may use.

    Raises:
        GenotypeError: on unknown operations, input indices that do not point
            to an earlier node, an odd number of edges, or bad concat lists.
    """

    accurate: tuple[Edge, ...]
    accurate_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    robust: tuple[Edge, ...]
    robust_concat: tuple[int, ...]
    primitives: tuple[str, ...] = field(default=PRIMITIVES, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "primitives", tuple(self.primitives))
        for cell in CELL_TYPES:
            edges = _edges(getattr(self, cell), cell)
            set_(self, cell, edges)
            concat = getattr(self, f"{cell}_concat")
            try:
                concat = tuple(int(i) for i in concat)
            except (TypeError, ValueError):
                raise GenotypeError(
                    f"genotype.{cell}_concat: expected a list of node indices, got {concat!r}"
                ) from None
            set_(self, f"{cell}_concat", concat)
            self._check_cell(cell, edges, concat)
        if self.nodes("accurate") != self.nodes("reduce") or self.nodes("reduce") != self.nodes(
            "robust"
        ):
            raise GenotypeError(
                "genotype: all cell types must have the same number of nodes, got "
                + ", ".join(f"{c}={self.nodes(c)}" for c in CELL_TYPES)
            )

    def _check_cell(self, cell: str, edges: tuple[Edge, ...], concat: tuple[int, ...]) -> None:
        if not edges or len(edges) % 2:
            raise GenotypeError(
                f"genotype.{cell}: needs two edges per intermediate node (an even, "
                f"non-zero count), got {len(edges)}"
            )
        for position, (op, index) in enumerate(edges):
            node = 2 + position // 2
            if op not in self.primitives:
                raise GenotypeError(
                    f"genotype.{cell}[{position}]: unknown operation '{op}'"
                    f"{near_miss(op, self.primitives)}; known: {', '.join(self.primitives)}"
                )
            if not 0 <= index < node:
                raise GenotypeError(
                    f"genotype.{cell}[{position}]: node {node} can only take inputs "
                    f"0..{node - 1}, got {index}"
                )
        last = 2 + len(edges) // 2
        if not concat or any(not 0 <= i < last for i in concat) or len(set(concat)) != len(concat):
            raise GenotypeError(
                f"genotype.{cell}_concat: must list distinct node indices in 0..{last - 1}, "
                f"got {list(concat)}"
            )

    def nodes(self, cell: str = "accurate") -> int:
        """Number of intermediate nodes of a cell type."""
        return len(getattr(self, cell)) // 2

    def cell(self, cell: str) -> tuple[tuple[Edge, ...], tuple[int, ...]]:
        """``(edges, concat)`` of a cell type."""
        if cell not in CELL_TYPES:
            raise GenotypeError(f"unknown cell type '{cell}'{near_miss(cell, CELL_TYPES)}")
        return getattr(self, cell), getattr(self, f"{cell}_concat")

    # --- derivation --------------------------------------------------------------
    @classmethod
    def from_alphas(
        cls,
        alphas: Mapping[str, torch.Tensor],
        primitives: Sequence[str] = PRIMITIVES,
        concat: Sequence[int] | None = None,
    ) -> Genotype:
        """Derive the discrete architecture from architecture parameters.

        The DARTS rule (Liu et al. 2019, Sec. 2.4) as ARNAS uses it: softmax
        over the operations of each edge; each intermediate node keeps its two
        incoming edges with the largest operation weight (strongest first), and
        on each the operation with the largest weight. The output concatenates
        the intermediate nodes.

        Args:
            alphas: ``{"accurate", "reduce", "robust"}`` → tensor ``[edges, ops]``.
            primitives: operation names, in the column order of the alphas.
            concat: output nodes; defaults to every intermediate node.
        """
        missing = [c for c in CELL_TYPES if c not in alphas]
        if missing:
            raise GenotypeError(f"from_alphas: missing alphas for {missing}; need {CELL_TYPES}")
        cells: dict[str, Any] = {}
        for cell in CELL_TYPES:
            weights = torch.softmax(alphas[cell].detach().float().cpu(), dim=-1)
            if weights.ndim != 2 or weights.shape[1] != len(primitives):
                raise GenotypeError(
                    f"from_alphas: alphas['{cell}'] must have shape [edges, {len(primitives)}], "
                    f"got {list(weights.shape)}"
                )
            cells[cell] = _derive_cell(weights, primitives)
        nodes = len(cells["accurate"]) // 2
        out = tuple(concat) if concat is not None else tuple(range(2, 2 + nodes))
        return cls(
            **cells,
            accurate_concat=out,
            reduce_concat=out,
            robust_concat=out,
            primitives=tuple(primitives),
        )

    @classmethod
    def random(
        cls,
        nodes: int,
        generator: torch.Generator,
        primitives: Sequence[str] = PRIMITIVES,
    ) -> Genotype:
        """A genotype drawn uniformly from the space the DARTS derivation can produce.

        Per cell type and intermediate node: two distinct inputs, every pair of
        earlier nodes equally likely, and on each edge one of ``primitives``
        (no ``none``), uniformly; the output concatenates every intermediate node.
        The random-architecture baseline of NAS evaluations (Li & Talwalkar, 2019;
        Yang et al., ICLR 2020).

        >>> import torch
        >>> g = Genotype.random(4, torch.Generator().manual_seed(0))
        >>> g.nodes(), g.accurate_concat
        (4, (2, 3, 4, 5))
        """
        if nodes < 1:
            raise GenotypeError(f"random genotype: nodes must be at least 1, got {nodes}")
        cells: dict[str, tuple[Edge, ...]] = {}
        for cell in CELL_TYPES:
            gene: list[Edge] = []
            for node in range(nodes):
                inputs = torch.randperm(2 + node, generator=generator)[:2].sort().values.tolist()
                ops = torch.randint(len(primitives), (2,), generator=generator).tolist()
                gene += [(primitives[op], index) for op, index in zip(ops, inputs, strict=True)]
            cells[cell] = tuple(gene)
        out = tuple(range(2, 2 + nodes))
        return cls(
            **cells,
            accurate_concat=out,
            reduce_concat=out,
            robust_concat=out,
            primitives=tuple(primitives),
        )

    # --- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``"schema": 1``."""
        data: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for cell in CELL_TYPES:
            data[cell] = [[op, index] for op, index in getattr(self, cell)]
            data[f"{cell}_concat"] = list(getattr(self, f"{cell}_concat"))
        if self.primitives != PRIMITIVES:
            data["primitives"] = list(self.primitives)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genotype:
        """Inverse of :meth:`to_dict`; rejects unknown keys and schema versions."""
        if not isinstance(data, Mapping):
            raise GenotypeError(f"genotype: expected a JSON object, got {type(data).__name__}")
        schema = data.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise GenotypeError(
                f"genotype: schema {schema!r} is not supported (this version reads "
                f"schema {SCHEMA_VERSION}); upgrade arnas-ray"
            )
        known = {"schema", "primitives", *CELL_TYPES, *(f"{c}_concat" for c in CELL_TYPES)}
        for key in data:
            if key not in known:
                raise GenotypeError(f"genotype: unknown key '{key}'{near_miss(key, known)}")
        missing = [k for k in sorted(known - {"schema", "primitives"}) if k not in data]
        if missing:
            raise GenotypeError(f"genotype: missing keys {missing}")
        kwargs = {k: v for k, v in data.items() if k != "schema"}
        return cls(**kwargs)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise GenotypeError(f"genotype: not valid JSON ({error})") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the genotype as JSON, atomically (temporary file + rename)."""
        return atomic_write_text(path, self.to_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Genotype:
        path = Path(path)
        if not path.is_file():
            raise GenotypeError(f"genotype file '{path}' does not exist")
        try:
            return cls.from_json(path.read_text())
        except GenotypeError as error:
            raise GenotypeError(f"{path}: {error}") from None

    def describe(self) -> str:
        """A plain-text, one-line-per-node description of every cell type."""
        lines = []
        for cell in CELL_TYPES:
            edges, concat = self.cell(cell)
            lines.append(f"{cell} cell (output = concat of nodes {list(concat)}):")
            for node in range(len(edges) // 2):
                a, b = edges[2 * node], edges[2 * node + 1]
                lines.append(f"  node {node + 2} = {a[0]}(input {a[1]}) + {b[0]}(input {b[1]})")
        return "\n".join(lines)


def _derive_cell(weights: torch.Tensor, primitives: Sequence[str]) -> tuple[Edge, ...]:
    edges_total = weights.shape[0]
    nodes, start, gene = 0, 0, []
    while start < edges_total:
        inputs = 2 + nodes
        block = weights[start : start + inputs]
        if block.shape[0] != inputs:
            raise GenotypeError(
                f"from_alphas: {edges_total} edges is not a valid cell size "
                "(2 + 3 + 4 + ... edges for 1, 2, 3, ... nodes)"
            )
        strength = block.max(dim=1).values
        # Strongest first; ties keep the lower input index (stable order).
        order = sorted(range(inputs), key=lambda j: -float(strength[j]))[:2]
        for j in order:
            gene.append((primitives[int(block[j].argmax())], j))
        start += inputs
        nodes += 1
    return tuple(gene)
