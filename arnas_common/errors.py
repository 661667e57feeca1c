"""The error hierarchy shared by every package of arnas-ray.

User mistakes raise an :class:`ArnasError` subclass whose message says what is
wrong, where, and how to fix it; command-line entry points print that message
on one line and exit with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ArnasError",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "GenotypeError",
    "NonFiniteError",
    "UnknownNameError",
    "near_miss",
]


class ArnasError(Exception):
    """Base class of every error that arnas-ray raises for bad input."""


class ConfigError(ArnasError, ValueError):
    """A configuration value or key is invalid."""


class GenotypeError(ArnasError, ValueError):
    """A genotype is malformed (unknown operation, bad input index, wrong length)."""


class CheckpointError(ArnasError):
    """A checkpoint is missing, corrupt or from an incompatible run."""


class DatasetError(ArnasError):
    """A dataset is unknown or its files are missing."""


class NonFiniteError(ArnasError):
    """A loss or metric became NaN or infinite: the run cannot continue."""


class UnknownNameError(ArnasError, LookupError):
    """A registry lookup failed; the message lists the nearest names."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else ""


def near_miss(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
