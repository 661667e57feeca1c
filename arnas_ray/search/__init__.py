"""The ARNAS search: configuration and engine (no Ray, no Optuna).

``python -m arnas_ray.search --config FILE.yaml`` runs one search from the
command line; see ``--help``.
"""

from arnas_ray.search.config import ArchMode, DataConfig, SearchConfig, space_for, split_run_config
from arnas_ray.search.engine import ArnasSearch, NonFiniteError, resolve_device

__all__ = [
    "ArchMode",
    "ArnasSearch",
    "DataConfig",
    "NonFiniteError",
    "SearchConfig",
    "resolve_device",
    "space_for",
    "split_run_config",
]
