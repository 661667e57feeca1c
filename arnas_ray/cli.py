"""Moved to :mod:`arnas_common.cli`; this path re-exports it for one release."""

from arnas_common.cli import *  # noqa: F403
from arnas_common.cli import __all__  # noqa: F401
