"""Command-line plumbing: thread counts."""

from __future__ import annotations

import pytest
import torch

from arnas_ray._cli import available_cores, default_threads, set_threads
from search_spaces.errors import ConfigError


def test_threads_default_to_omp_num_threads_else_the_available_cores(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert default_threads() == 1 and set_threads(None) == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert default_threads() == available_cores() >= 1
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
        with pytest.raises(ConfigError, match="--threads"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
