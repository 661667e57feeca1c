"""The ARNAS cell search space: operations, genotypes, supernet and networks.

Imports only torch and pydantic (never Ray or Optuna).
"""

from __future__ import annotations

from arnas_common.errors import ArnasError
from arnas_common.errors import CheckpointError
from arnas_common.errors import ConfigError
from arnas_common.errors import DatasetError
from arnas_common.errors import GenotypeError
from arnas_common.errors import UnknownNameError
from search_spaces import genotypes
from search_spaces.config import SpaceConfig
from search_spaces.genotype import CELL_TYPES
from search_spaces.genotype import Genotype
from search_spaces.network import Network
from search_spaces.network import count_parameters
from search_spaces.operations import OPS
from search_spaces.operations import PRIMITIVES
from search_spaces.operations import MixedOp
from search_spaces.spec import NetworkSpec
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
    "NetworkSpec",
    "SpaceConfig",
    "Supernet",
    "UnknownNameError",
    "count_parameters",
    "genotypes",
]
