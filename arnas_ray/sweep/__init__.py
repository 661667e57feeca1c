"""Sweeps of ARNAS searches with Ray Tune and Optuna: the only part of the
project (search side) that imports Ray.

``config`` (what to sample and optimise, validated before Ray starts),
``optuna_bridge`` (sampling, constraints, the study's storage), ``searcher`` (our Tune
searcher over Optuna's ask-and-tell), ``trainable`` (one search as a Tune trial),
``moasha`` (multi-objective early stopping), ``rundir`` (ownership of the run
directory), ``trial_storage`` (where trial checkpoints go), ``cluster`` (checks of the
Ray cluster), ``run`` (the driver) and ``__main__`` (``python -m arnas_ray.sweep``).
The result is an :class:`arnas_ray.results.SweepResult`.

``run_sweep`` is imported on first use, so that configs validate without Ray
and the command line can choose Ray's bind address before Ray is imported
(:func:`arnas_common.rayenv.keep_local_ray_on_loopback`).
"""

from typing import Any

from arnas_ray.sweep.config import DEFAULT_CONFIG
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.config import load_sweep_config
from arnas_ray.sweep.config import validate_sweep
from arnas_ray.sweep.samplers import make_sampler
from arnas_ray.sweep.space import ParamSpec

__all__ = [
    "DEFAULT_CONFIG",
    "ParamSpec",
    "SweepConfig",
    "load_sweep_config",
    "make_sampler",
    "run_sweep",
    "validate_sweep",
]


def __getattr__(name: str) -> Any:
    if name == "run_sweep":
        from arnas_ray.sweep.run import run_sweep

        return run_sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
