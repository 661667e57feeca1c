"""The ARNAS cell search space: operations, genotypes, supernet and networks.

Imports only torch and pydantic (never Ray or Optuna).
"""

from __future__ import annotations

from search_spaces import genotypes
from search_spaces.config import SpaceConfig
from search_spaces.errors import (
    ArnasError,
    CheckpointError,
    ConfigError,
    DatasetError,
    GenotypeError,
    UnknownNameError,
)
from search_spaces.genotype import CELL_TYPES, Genotype
from search_spaces.network import Network, count_parameters
from search_spaces.operations import OPS, PRIMITIVES, MixedOp
from search_spaces.supernet import Supernet

__all__ = [
    "CELL_TYPES",
    "OPS",
    "PRIMITIVES",
    "ArnasError",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "Genotype",
    "GenotypeError",
    "MixedOp",
    "Network",
    "SpaceConfig",
    "Supernet",
    "UnknownNameError",
    "count_parameters",
    "genotypes",
]
