"""The ARNAS search: configuration and engine (no Ray, no Optuna).

``python -m arnas_ray.search --config FILE.yaml`` runs one search from the
command line; see ``--help``.
"""

from arnas_ray.search.config import ArchMode
from arnas_ray.search.config import DataConfig
from arnas_ray.search.config import SearchConfig
from arnas_ray.search.config import space_for
from arnas_ray.search.config import split_run_config
from arnas_ray.search.engine import ArnasSearch
from arnas_ray.search.engine import NonFiniteError
from arnas_ray.search.engine import resolve_device

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
