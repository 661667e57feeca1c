"""Checkpoints of final training (``best.pt``, ``last.pt``): read, checked, loaded.

A checkpoint is a dict of tensors and plain values, read with
``weights_only=True``: loading one never runs code. Every reader goes through
:func:`read_checkpoint`, so a truncated file, another file type or a
checkpoint missing keys is one :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from arnas_common.errors import ArnasError
from arnas_common.errors import CheckpointError
from search_spaces.genotype import Genotype
from search_spaces.network import Network
from search_spaces.spec import NetworkSpec

__all__ = ["CHECKPOINT_KIND", "checkpoint_spec", "load_network", "read_checkpoint"]

CHECKPOINT_KIND = "arnas-ray-network"
#: Keys of every checkpoint, and the extra keys of a resumable one (``last.pt``).
KEYS = ("kind", "genotype", "network", "dataset", "config", "model", "epoch", "history")
RESUME_KEYS = ("optimizer", "scheduler", "rng", "best")


def read_checkpoint(
    path: str | Path, device: torch.device | str = "cpu", full: bool = False
) -> dict[str, Any]:
    """The checked contents of a checkpoint; ``full``: it must be resumable.

    Raises:
        CheckpointError: missing, unreadable, not ours, or missing keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at '{path}'")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated zip, pickle opcodes outside the allow-list, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"cannot read checkpoint '{path}' ({reason[:200]}); "
            "it may be truncated: delete it to start over"
        ) from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"'{path}' is not a network checkpoint of analysis.train")
    missing = [k for k in (*KEYS, *(RESUME_KEYS if full else ())) if k not in state]
    if missing:
        raise CheckpointError(
            f"'{path}' lacks {', '.join(missing)}; it was not written by analysis.train"
        )
    if not isinstance(state["epoch"], int) or state["epoch"] < 0:
        raise CheckpointError(f"'{path}' has an invalid epoch {state['epoch']!r}")
    return state


def checkpoint_spec(state: dict[str, Any]) -> NetworkSpec:
    """The :class:`~search_spaces.spec.NetworkSpec` a checkpoint's network was built from;
    checkpoints from before specs (their ``network`` is ``Network``'s keyword arguments)
    are read through :meth:`NetworkSpec.from_legacy`.

    Raises:
        ArnasError: the stored network or genotype is malformed.
    """
    network = state["network"]
    if isinstance(network, dict) and "schema" in network:
        return NetworkSpec.from_dict(network, where="checkpoint network")
    if not isinstance(network, dict):
        raise CheckpointError("checkpoint network is not a mapping")
    return NetworkSpec.from_legacy(Genotype.from_json(state["genotype"]), network)


def load_network(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[Network, dict[str, Any]]:
    """A trained network (eval mode) and its checkpoint's metadata (``best.pt`` or ``last.pt``)."""
    state = read_checkpoint(path, device)
    try:
        net = Network.from_spec(checkpoint_spec(state), device=device)
        net.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError, KeyError, ArnasError) as error:
        raise CheckpointError(
            f"'{path}' does not match its network: {str(error).splitlines()[0][:200]}"
        ) from None
    return net.eval(), state
