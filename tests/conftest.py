"""Shared fixtures: tiny search spaces and the embedded digits dataset.

Every test process is single-threaded: torch in this process, and through
``OMP_NUM_THREADS`` the commands that tests start in subprocesses (their
``--threads`` default) and Ray's workers. Threads beyond the free cores make
CPU work many times slower.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from search_spaces.config import SpaceConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_space() -> SpaceConfig:
    """A supernet that runs in milliseconds on CPU."""
    return SpaceConfig(layers=5, init_channels=4, nodes=2)
