"""Moved to :mod:`arnas_common.io`; this path re-exports it for one release."""

from arnas_common.io import *  # noqa: F403
from arnas_common.io import __all__  # noqa: F401
