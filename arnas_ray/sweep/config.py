"""Sweep configuration: what to sample, what to optimise, how to run the trials.

Ray-free: the whole file is validated here, against the real run configs and
Optuna's samplers, before Ray starts (:func:`validate_sweep`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import PlainSerializer
from pydantic import PlainValidator
from pydantic import model_validator

from arnas_common import metrics as M
from arnas_common.cli import apply_overrides
from arnas_common.cli import load_yaml
from arnas_common.cli import override_sources
from arnas_common.cli import resolve_path
from arnas_common.config_base import Float
from arnas_common.config_base import FrozenConfig
from arnas_common.config_base import Int
from arnas_common.errors import ConfigError
from arnas_common.errors import near_miss
from arnas_ray.search.config import run_config_keys
from arnas_ray.search.run_config import RunConfig
from arnas_ray.sweep.bounds import objective_bounds
from arnas_ray.sweep.samplers import make_sampler
from arnas_ray.sweep.space import ParamSpec
from arnas_ray.sweep.space import check_enqueue
from arnas_ray.sweep.space import sampling_order
from arnas_ray.sweep.tracking import check_callbacks
from arnas_ray.sweep.trial_storage import check_trial_storage

__all__ = [
    "DEFAULT_CONFIG",
    "ParamSpec",
    "SweepConfig",
    "load_sweep_config",
    "validate_sweep",
]


def _run_config(value: Any) -> RunConfig:
    if isinstance(value, RunConfig):
        return value
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of run-config keys")
    return RunConfig.from_flat(value, where="sweep.fixed")


#: ``fixed``: a :class:`RunConfig`, parsed once from its mapping, written back as one.
FixedRunConfig = Annotated[
    RunConfig,
    PlainValidator(_run_config),
    PlainSerializer(lambda run: run.to_dict(), return_type=dict),
]

#: Environment variable with the storage URL, so a password never sits in a config file.
STORAGE_ENV = "ARNAS_STORAGE_URL"
#: The default sweep when no --config is given.
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "sweep-tiny.yaml"


class Limit(FrozenConfig):
    """A feasibility limit on one metric: ``{max: X}`` or ``{min: X}``."""

    max: Float | None = Field(None, description="feasible when the metric is at most this")
    min: Float | None = Field(None, description="feasible when the metric is at least this")

    @model_validator(mode="after")
    def _one_side(self) -> Limit:
        if (self.max is None) == (self.min is None):
            raise ValueError("a constraint is {max: X} or {min: X}, exactly one of them")
        return self

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 feasible, > 0 by how much the limit is missed."""
        return value - self.max if self.max is not None else self.min - value  # type: ignore[operator]

    def describe(self, metric: str) -> str:
        return f"{metric} <= {self.max:g}" if self.max is not None else f"{metric} >= {self.min:g}"


class Resources(FrozenConfig):
    cpu: Float = Field(1.0, gt=0.0, description="CPUs per trial")
    gpu: Float = Field(0.0, ge=0.0, description="GPUs per trial (fractions share a GPU)")


class SchedulerSpec(FrozenConfig):
    """Early stopping of trials (rungs at ``grace_period * reduction_factor**k`` epochs)."""

    type: Literal["none", "asha", "moasha"] = Field(
        "none",
        description="none (every trial runs all epochs) | asha (one metric) | moasha (all "
        "objectives)",
    )
    metric: str = Field(M.PGD_ACC, description="asha only: the metric that decides")
    grace_period: Int = Field(1, ge=1, description="epochs before a trial can be stopped")
    reduction_factor: Float = Field(
        2.0, gt=1.0, description="1/reduction_factor of a rung continues"
    )
    brackets: Int = Field(
        1, ge=1, le=100, description="moasha only: brackets starting at grace_period * factor^s"
    )

    @model_validator(mode="after")
    def _options_of_the_type(self) -> SchedulerSpec:
        """Options of another scheduler type would be ignored without a word: refuse them."""
        defaults = {name: field.default for name, field in SchedulerSpec.model_fields.items()}
        used = {
            "none": (),
            "asha": ("metric", "grace_period", "reduction_factor"),
            "moasha": ("grace_period", "reduction_factor", "brackets"),
        }[self.type]
        for name in ("metric", "grace_period", "reduction_factor", "brackets"):
            if name not in used and getattr(self, name) != defaults[name]:
                takers = [
                    t
                    for t, keys in (
                        ("asha", ("metric", "grace_period", "reduction_factor")),
                        ("moasha", ("grace_period", "reduction_factor", "brackets")),
                    )
                    if name in keys
                ]
                raise ValueError(
                    f"scheduler.{name} applies to type {' and '.join(takers)} only, not "
                    f"{self.type}; remove it or change scheduler.type"
                )
        return self


DEFAULT_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "regularization_coefficient": {"type": "loguniform", "low": 0.01, "high": 10.0},
    "arch_mode": {"type": "choice", "values": ["mgda", "weighted"]},
    "natural_weight": {
        "type": "uniform",
        "low": 0.1,
        "high": 1.0,
        "when": {"arch_mode": "weighted"},
    },
    "search_attack.eps": {"type": "choice", "values": [2 / 255, 4 / 255, 8 / 255]},
    "robust_start": {"type": "uniform", "low": 0.3, "high": 1.0},
    "robust_width": {"type": "choice", "values": [0.5, 1.0, 2.0]},
    "arch_lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3},
}


class SweepConfig(FrozenConfig):
    """A sweep: what to sample, what to optimise, how to run the trials."""

    name: str = Field("arnas-sweep", description="sweep name (also the default study name)")
    out: str = Field("runs/sweep", description="run directory (trials.parquet, pareto.json, ...)")
    trials: Int = Field(8, ge=1, description="number of trials (ARNAS searches)")
    max_concurrent: Int = Field(2, ge=1, description="trials running at once")
    seed: Int = Field(0, ge=0, description="seed of the Optuna sampler")
    sampler: str = Field(
        "nsga2", description="nsga2 | nsga3 | tpe | random | gp | qmc | an Optuna sampler class"
    )
    sampler_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the sampler"
    )
    objectives: dict[str, Literal["maximize", "minimize"]] = Field(
        default_factory=lambda: dict(M.DEFAULT_OBJECTIVES),  # type: ignore[arg-type]
        description=f"metric -> direction; metrics: {', '.join(M.OBJECTIVE_METRICS)}",
    )
    resources: Resources = Field(default_factory=Resources, description="per-trial {cpu, gpu}")
    scheduler: SchedulerSpec = Field(
        default_factory=SchedulerSpec,
        description="{type: none|asha|moasha, metric, grace_period, reduction_factor}",
    )
    budget_epochs: Int | None = Field(
        None,
        ge=1,
        description="stop the sweep once its trials ran this many epochs in total (trials "
        "then running stop early); with a scheduler, set trials high and let the budget decide",
    )
    max_failures: Int = Field(2, ge=0, description="retries of a failed trial from its checkpoint")
    trial_timeout_s: Float | None = Field(3600.0, gt=0, description="wall-clock limit per trial")
    storage: str | None = Field(
        None,
        description="Optuna storage URL (default: $ARNAS_STORAGE_URL, else sqlite:///OUT/study.db)",
    )
    study_name: str | None = Field(None, description="Optuna study name (default: name)")
    trial_storage: str | None = Field(
        None,
        description="where Tune keeps trial checkpoints: s3://bucket/prefix (or another "
        "pyarrow URI) or an absolute path every node shares; needed on a cluster whose nodes "
        "do not share --out (default: the run directory)",
    )
    fixed: FixedRunConfig = Field(
        default_factory=RunConfig.from_flat, description="run-config keys shared by all trials"
    )
    search_space: dict[str, ParamSpec] = Field(
        default_factory=lambda: {k: ParamSpec(**v) for k, v in DEFAULT_SEARCH_SPACE.items()},
        description="run-config key -> {type, low, high, values, when}",
    )
    report: bool = Field(True, description="write the HTML report at the end (needs analysis)")
    reference_point: dict[str, Float] | None = Field(
        None,
        description="hypervolume reference per objective (default: the objectives' fixed bounds: "
        "accuracies 0, params_m the largest network the space can derive); in result.json",
    )
    constraints: dict[str, Limit] = Field(
        default_factory=dict,
        description="metric -> {max: X} or {min: X}: a feasibility limit, not an objective "
        "(samplers with constraints_func: nsga2, nsga3, tpe, gp)",
    )
    enqueue: list[dict[str, Any]] = Field(
        default_factory=list,
        description="search_space values of trials to evaluate first (Optuna's enqueue_trial)",
    )
    callbacks: tuple[str, ...] = Field(
        (),
        description="experiment tracking, Ray Tune's logger callbacks by name: tensorboard, "
        "mlflow, wandb (csv and json are always on)",
    )
    callback_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="callback -> its options (mlflow: tracking_uri, experiment_name, ...; "
        "wandb: project, group, entity, mode (default offline), ...)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        if self.storage is not None:
            mask_url(self.storage)
        if not self.objectives:
            raise ValueError("objectives is empty: name at least one metric to optimise")
        for metric in self.objectives:
            if metric not in M.OBJECTIVE_METRICS:
                raise ValueError(
                    f"unknown objective '{metric}'{near_miss(metric, M.OBJECTIVE_METRICS)}; "
                    f"choose from {', '.join(M.OBJECTIVE_METRICS)}"
                )
        if self.scheduler.type != "none" and self.scheduler.metric not in M.OBJECTIVE_METRICS:
            raise ValueError(f"scheduler.metric must be one of {', '.join(M.OBJECTIVE_METRICS)}")
        for metric in self.reference_point or {}:
            if metric not in self.objectives:
                raise ValueError(
                    f"reference_point names '{metric}', which is not an objective"
                    f"{near_miss(metric, self.objectives)}; give one value per objective"
                )
        for metric in self.constraints:
            if metric not in M.CONSTRAINT_METRICS:
                raise ValueError(
                    f"constraints: unknown metric "
                    f"'{metric}'{near_miss(metric, M.CONSTRAINT_METRICS)}; "
                    f"choose from {', '.join(M.CONSTRAINT_METRICS)}"
                )
        return self

    def reference(self) -> dict[str, float]:
        """The hypervolume reference point: ``reference_point`` where given, else the
        objectives' fixed bounds (:func:`objective_bounds`)."""
        bounds = objective_bounds(self.objectives, self.search_space, self.fixed)
        return {m: float((self.reference_point or {}).get(m, bounds[m])) for m in self.objectives}

    @property
    def out_dir(self) -> Path:
        return resolve_path(self.out)

    def resolved_storage_url(self) -> str:
        """``storage``, else ``$ARNAS_STORAGE_URL``, else SQLite in the run directory."""
        return (
            self.storage or os.environ.get(STORAGE_ENV) or f"sqlite:///{self.out_dir / 'study.db'}"
        )

    @property
    def display_storage_url(self) -> str:
        """The storage URL with its password masked: the only form printed or written."""
        return mask_url(self.resolved_storage_url())

    def to_dict(self, masked: bool = False, *, exclude_none: bool = False) -> dict[str, Any]:
        data = super().to_dict(exclude_none=exclude_none)
        if masked and data.get("storage") is not None:
            data["storage"] = mask_url(data["storage"])
        return data


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (SQLAlchemy's own rendering)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise ValueError(
            "storage must be an SQLAlchemy URL such as sqlite:///study.db or "
            "postgresql+psycopg://user@host/db"
        ) from None


def validate_sweep(config: SweepConfig, fixed_errors: tuple[str, ...] = ()) -> None:
    """Every key and bound checked against the real configs, before Ray starts (``fixed``
    is valid once the config exists; ``fixed_errors``: the lines of a ``fixed`` that was
    not, the config holding an empty one in its place, so the rest is still checked).

    Raises:
        ConfigError: one line per problem.
    """
    errors = list(fixed_errors)
    fixed_ok = not fixed_errors  # else each sampled value would repeat the same problem
    run_keys = run_config_keys()
    if not config.search_space:
        errors.append("sweep.search_space is empty: name at least one key to sample")
    try:
        sampling_order(config.search_space)
    except ConfigError as error:
        errors.append(str(error))
    if config.trial_storage is not None:
        try:
            check_trial_storage(config.trial_storage)
        except ConfigError as error:
            errors.append(str(error))
    try:
        check_callbacks(config.callbacks, config.callback_options)
    except ConfigError as error:
        errors.extend(str(error).splitlines())
    for key, spec in config.search_space.items():
        where = f"sweep.search_space.{key}"
        if key not in run_keys:
            errors.append(f"{where}: '{key}' is not a run-config key{near_miss(key, run_keys)}")
            continue
        if config.fixed.get_dotted(key) is not None:
            errors.append(f"{where}: '{key}' is both fixed and sampled; remove one")
        for cond, value in (spec.when or {}).items():
            other = config.search_space.get(cond)
            if other is None or other.type != "choice" or value not in (other.values or []):
                errors.append(
                    f"{where}: 'when' needs '{cond}' to be a choice parameter with value {value!r}"
                )
        for value in spec.probe_values() if fixed_ok else ():
            try:
                config.fixed.with_dotted({**(spec.when or {}), key: value}, where=where)
            except ConfigError as error:
                errors.append(
                    str(error)
                    .splitlines()[0]
                    .replace(f"{where}: ", f"{where}: value {value!r}: ", 1)
                )
                break
    if fixed_ok and config.scheduler.type != "none":
        search = config.fixed.search
        if not search.warmup_validation and config.scheduler.grace_period <= search.warmup_epochs:
            errors.append(
                f"sweep: scheduler.grace_period ({config.scheduler.grace_period}) falls in the "
                f"warm-up epochs ({search.warmup_epochs}), which fixed.warmup_validation: "
                f"false leaves "
                "unvalidated; raise grace_period above warmup_epochs or validate the warm-up"
            )
    errors.extend(check_enqueue(config.enqueue, config.search_space))
    fixed_device = str(config.fixed.get("device", "auto"))
    if config.resources.gpu == 0 and fixed_device.startswith("cuda"):
        errors.append(f"sweep: fixed.device is '{fixed_device}' but resources.gpu is 0")
    if config.resources.gpu > 0 and fixed_device == "cpu":
        errors.append("sweep: resources.gpu > 0 but fixed.device is 'cpu'")
    try:
        make_sampler(config.sampler, config.sampler_options, config.seed, list(config.constraints))
    except ConfigError as error:
        errors.append(str(error))
    if errors:
        raise ConfigError("\n".join(errors))


def load_sweep_config(path: Path | None, overrides: list[str], out: Path | None) -> SweepConfig:
    """The sweep config of a file with ``--set`` overrides, validated (:func:`validate_sweep`);
    every error line names where its value came from."""
    data = load_yaml(path or DEFAULT_CONFIG)
    data = apply_overrides(data, overrides)
    if out is not None:
        data["out"] = str(out)
    fixed_sources = override_sources(overrides, prefix="fixed.")
    fixed_errors: tuple[str, ...] = ()
    if isinstance(data.get("fixed"), Mapping):  # parsed here, where its sources are known
        try:
            data["fixed"] = RunConfig.from_flat(
                data["fixed"], where="sweep.fixed", sources=fixed_sources
            )
        except ConfigError as error:
            fixed_errors = tuple(str(error).splitlines())
            data["fixed"] = {}
    try:
        config = SweepConfig.from_dict(
            data,
            where=f"sweep config {path or DEFAULT_CONFIG}",
            sources=override_sources(overrides),
        )
    except ConfigError as error:  # report the fixed keys' problems in the same go
        raise ConfigError("\n".join([str(error), *fixed_errors])) from None
    validate_sweep(config, fixed_errors)
    return config
