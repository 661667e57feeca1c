"""Moved to :mod:`arnas_common.metrics`; this path re-exports it for one release."""

from arnas_common.metrics import *  # noqa: F403
from arnas_common.metrics import __all__  # noqa: F401
