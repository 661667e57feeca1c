"""Checks of the Ray cluster a sweep runs on, made before any trial starts: the trials'
resources fit a node, every node sees where trial checkpoints go, a local node stays on
loopback."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import ray

from arnas_common.errors import ConfigError
from arnas_common.rayenv import LOOPBACK_ENV
from arnas_common.rayenv import is_loopback
from arnas_ray.sweep.config import SweepConfig

__all__ = ["check_cluster_resources", "check_shared_out", "warn_if_exposed"]


def check_cluster_resources(config: SweepConfig, local: bool) -> None:
    if local:  # ray.init() will start a one-node cluster of this machine
        import torch

        per_node = [(float(os.cpu_count() or 1), float(torch.cuda.device_count()))]
    else:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        per_node = [(n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes]
    fits = any(
        cpu >= config.resources.cpu and gpu >= config.resources.gpu for cpu, gpu in per_node
    )
    autoscaling = os.environ.get("ARNAS_ALLOW_AUTOSCALING") == "1"
    if not fits and not autoscaling:
        have = ", ".join(f"{cpu:g} CPU/{gpu:g} GPU" for cpu, gpu in per_node) or "no nodes"
        raise ConfigError(
            f"sweep: resources "
            f"{{cpu: {config.resources.cpu:g}, gpu: {config.resources.gpu:g}}} fit no "
            f"node of the cluster ({have}); lower resources, or set ARNAS_ALLOW_AUTOSCALING=1 "
            "when an autoscaler will add such nodes"
        )


def check_shared_out(out: Path, timeout_s: float = 60.0) -> None:
    """On a cluster of several nodes Tune keeps trial checkpoints under ``--out`` unless
    ``trial_storage`` says otherwise: every node must see that directory (a shared file
    system), or a trial moved to another node restarts with nothing. Verified, not assumed:
    a marker file the driver writes, looked for by a task on each other node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]
    if not others:
        return
    marker = out / f".shared-check-{uuid.uuid4().hex}"
    marker.write_text("")
    try:
        sees = ray.remote(num_cpus=0)(os.path.exists)
        refs = [
            sees.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
            ).remote(str(marker))
            for node in others
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        blind = len(refs) - sum(bool(seen) for seen in ray.get(ready))
    finally:
        marker.unlink(missing_ok=True)
    if blind:
        raise ConfigError(
            f"sweep: {blind} of the cluster's {len(others) + 1} nodes do not see --out '{out}', "
            "where Tune would keep the trial checkpoints: set trial_storage (s3://bucket/prefix, "
            "or a path every node shares) so a trial can resume on another node"
        )


def warn_if_exposed() -> None:
    """A local Ray node whose address is not loopback listens on every interface: say so
    (Ray was imported before :func:`arnas_common.rayenv.keep_local_ray_on_loopback`)."""
    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip):
        logging.getLogger(__name__).warning(
            "sweep: the local Ray node listens on %s, not only 127.0.0.1; set %s=0 before "
            "Ray is imported (python -m arnas_ray.sweep does) to keep it on loopback",
            node_ip,
            LOOPBACK_ENV,
        )
