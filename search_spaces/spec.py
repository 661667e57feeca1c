"""One record per architecture: everything a discrete network needs to be rebuilt.

What a search finds is more than its :class:`~search_spaces.genotype.Genotype`: the
robust cells' placement and width and the skeleton (cells, channels, stem) decide the
network too, and the dataset decides its classes, input channels and normalisation.
:class:`NetworkSpec` holds all of it, frozen and schema-versioned, and is the one
form in which an architecture travels: from a search trial (``from_space``) to the
network whose size ``params_m`` counts, to final training (``resized``), into its
checkpoints and back out to scoring (``Network.from_spec``).

>>> from search_spaces import genotypes
>>> spec = NetworkSpec(genotypes.get("ARNAS"), layers=8, init_channels=16)
>>> spec.resized(layers=20).layers, spec.stem_multiplier
(20, 3)
>>> NetworkSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arnas_common.errors import GenotypeError
from search_spaces.genotype import Genotype

__all__ = ["SCHEMA_VERSION", "NetworkSpec"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class NetworkSpec:
    """A discrete ARNAS network: genotype, skeleton, placement, head and data facts.

    Args:
        genotype: the cells.
        layers, init_channels, stem_multiplier: the skeleton (paper's final
            training: 20 cells, 64 channels, stem multiplier 3).
        robust_start, robust_width: where the robust cells begin and the width of
            their stage (:class:`~search_spaces.config.SpaceConfig`'s rules).
        num_classes, in_channels, input_mean, input_std: from the dataset.
        auxiliary, drop_path_prob: the training head and regularisation.
    """

    genotype: Genotype
    layers: int = 20
    init_channels: int = 64
    stem_multiplier: int = 3
    robust_start: float | None = None
    robust_width: float = 1.0
    num_classes: int = 10
    in_channels: int = 3
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    auxiliary: bool = False
    drop_path_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_mean", "input_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
        for name in ("layers", "init_channels", "stem_multiplier", "num_classes", "in_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GenotypeError(
                    f"network spec: {name} must be a positive integer, got {value!r}"
                )
        if self.layers < 3:
            raise GenotypeError(
                f"network spec: layers must be at least 3 (two reductions), got {self.layers}"
            )

    @classmethod
    def from_space(cls, genotype: Genotype, space: Any) -> NetworkSpec:
        """The network a search of ``space`` (a ``SpaceConfig``) derives: its skeleton,
        placement and data facts, with ``genotype``'s cells."""
        return cls(
            genotype,
            layers=space.layers,
            init_channels=space.init_channels,
            stem_multiplier=space.stem_multiplier,
            robust_start=space.robust_start,
            robust_width=space.robust_width,
            num_classes=space.num_classes,
            in_channels=space.in_channels,
            input_mean=space.input_mean,
            input_std=space.input_std,
        )

    def resized(
        self, *, layers: int | None = None, init_channels: int | None = None
    ) -> NetworkSpec:
        """The same architecture with another depth or width (the paper trains 20 cells of
        64 channels what it searched at 8 of 24)."""
        return dataclasses.replace(
            self,
            layers=self.layers if layers is None else layers,
            init_channels=self.init_channels if init_channels is None else init_channels,
        )

    def replace(self, **changes: Any) -> NetworkSpec:
        """A copy with ``changes`` (validated like the original)."""
        return dataclasses.replace(self, **changes)

    def network_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~search_spaces.network.Network` (without ``genotype``)."""
        return {
            "init_channels": self.init_channels,
            "layers": self.layers,
            "num_classes": self.num_classes,
            "auxiliary": self.auxiliary,
            "drop_path_prob": self.drop_path_prob,
            "robust_start": self.robust_start,
            "robust_width": self.robust_width,
            "in_channels": self.in_channels,
            "stem_multiplier": self.stem_multiplier,
            "input_mean": self.input_mean,
            "input_std": self.input_std,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``from_dict(to_dict())`` gives an equal spec."""
        data = self.network_kwargs()
        data["input_mean"] = list(self.input_mean) if self.input_mean is not None else None
        data["input_std"] = list(self.input_std) if self.input_std is not None else None
        return {"schema": SCHEMA_VERSION, "genotype": self.genotype.to_dict(), **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "network spec") -> NetworkSpec:
        """A spec from :meth:`to_dict`'s form (any schema this version reads).

        Raises:
            GenotypeError: another schema, unknown or missing keys, bad values.
        """
        if not isinstance(data, Mapping):
            raise GenotypeError(f"{where}: expected a mapping, got {type(data).__name__}")
        if data.get("schema") != SCHEMA_VERSION:
            raise GenotypeError(f"{where}: schema {data.get('schema')!r} is not {SCHEMA_VERSION}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields - {"schema"})
        if unknown:
            raise GenotypeError(f"{where}: unknown keys {', '.join(unknown)}")
        if "genotype" not in data:
            raise GenotypeError(f"{where}: no genotype")
        kwargs = {k: v for k, v in data.items() if k in fields and k != "genotype"}
        try:
            return cls(Genotype.from_dict(data["genotype"]), **kwargs)
        except TypeError as error:
            raise GenotypeError(f"{where}: {error}") from None

    @classmethod
    def from_legacy(cls, genotype: Genotype, network_args: Mapping[str, Any]) -> NetworkSpec:
        """A spec from a checkpoint written before specs existed: its ``network`` keyword
        arguments (no stem multiplier: those networks were built with the default 3)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"genotype"}
        return cls(genotype, **{k: v for k, v in network_args.items() if k in known})
