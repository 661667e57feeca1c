"""Device resolution: the one place a device name becomes a ``torch.device``."""

from __future__ import annotations

import torch

from arnas_common.errors import ConfigError

__all__ = ["check_local_resources", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; validates explicit CUDA requests."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available; use device=cpu")
    return device


def check_local_resources(cpus: float, gpus: float, what: str) -> None:
    """Refuse a per-trial request that no node of a local Ray cluster (this machine) can
    meet: Ray would wait for it forever.

    Raises:
        ConfigError: more CPUs than this machine's cores, or more GPUs than it has.
    """
    import os

    have_cpus, have_gpus = float(os.cpu_count() or 1), float(torch.cuda.device_count())
    if cpus > have_cpus or gpus > have_gpus:
        raise ConfigError(
            f"{what}: {cpus:g} CPU / {gpus:g} GPU per trial fit no node of this machine "
            f"({have_cpus:g} CPU / {have_gpus:g} GPU); lower them"
        )
