"""Moved to :mod:`arnas_common.errors`; this path re-exports it for one release."""

from arnas_common.errors import *  # noqa: F403
from arnas_common.errors import __all__  # noqa: F401
