"""Shared fixtures: tiny search spaces and the embedded digits dataset."""

from __future__ import annotations

import pytest
import torch

from search_spaces.config import SpaceConfig


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_space() -> SpaceConfig:
    """A supernet that runs in milliseconds on CPU."""
    return SpaceConfig(layers=5, init_channels=4, nodes=2)
