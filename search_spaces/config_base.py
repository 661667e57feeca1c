"""Moved to :mod:`arnas_common.config_base`; this path re-exports it for one release."""

from arnas_common.config_base import *  # noqa: F403
from arnas_common.config_base import __all__  # noqa: F401
