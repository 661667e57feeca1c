"""``python -m arnas_ray.sweep``: multi-objective sweeps of ARNAS searches.

Every trial is one ARNAS search (:mod:`arnas_ray.trainable`) run by Ray Tune;
an Optuna multi-objective sampler (NSGA-II by default) proposes loss weights
and search-space hyperparameters through Tune's ``OptunaSearch``. The Optuna
study lives in an RDB storage (SQLite in the run directory by default; any
SQLAlchemy URL), so it can be inspected with Optuna tools and
continued.

Consistency rules (Ray Tune + OptunaSearch weak spots, handled here):

* an errored trial is recorded FAIL in the study, whatever it reported
  before; a trial that stopped before its last epoch (scheduler, time limit)
  is recorded PRUNED and never reaches the Pareto front;
* ``--resume`` restores the Tune experiment with the same trial IDs
  (``resume_unfinished``; errored trials stay errored), and Optuna trials left
  RUNNING by a crashed driver are marked FAIL: after the sweep the study, Tune's
  results and ``trials.parquet`` agree;
* configuration errors are found in the driver, before ``Tuner.fit()``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import optuna
import pandas as pd
import ray
import yaml
from pydantic import Field, model_validator
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from arnas_ray import metrics as M
from arnas_ray._cli import (
    HelpFormatter,
    add_set_argument,
    apply_overrides,
    describe_fields,
    load_yaml,
    run_cli,
)
from arnas_ray.search.config import DATASET_SPACE_KEYS, SearchConfig, split_run_config
from arnas_ray.trainable import OPTUNA_TRIAL_KEY, SEARCH_FINISHED, train_search
from search_spaces._config import FrozenConfig
from search_spaces._io import atomic_write, atomic_write_text
from search_spaces.config import SpaceConfig
from search_spaces.errors import ArnasError, ConfigError, near_miss

__all__ = ["DEFAULT_CONFIG", "ParamSpec", "SweepConfig", "make_sampler", "run_sweep", "validate_sweep"]

log = logging.getLogger("arnas_ray.sweep")

#: The default sweep when no --config is given.
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sweep-tiny.yaml"
EXPERIMENT = "tune"

Int = Annotated[int, Field(strict=True)]
Float = Annotated[float, Field(strict=True)]

SAMPLERS = {
    "nsga2": ("NSGAIISampler", {}),
    "nsga3": ("NSGAIIISampler", {}),
    "tpe": ("TPESampler", {"multivariate": True}),
    "random": ("RandomSampler", {}),
    "gp": ("GPSampler", {}),
    "qmc": ("QMCSampler", {}),
}


class ParamSpec(FrozenConfig):
    """How one run-config key is sampled.

    ``type``: ``loguniform`` / ``uniform`` (``low``, ``high``), ``int``
    (``low``, ``high``, integers) or ``choice`` (``values``). ``when``: sample
    only if the named choice parameters took these values (else the key keeps
    its fixed/default value), e.g. ``natural_weight`` only for ``arch_mode:
    weighted``.
    """

    type: Literal["loguniform", "uniform", "int", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None
    when: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice parameter needs a non-empty 'values' list")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
            if not self.low < self.high:
                raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
            if self.type == "loguniform" and self.low <= 0:
                raise ValueError("a loguniform parameter needs low > 0")
        return self

    def probe_values(self) -> list[Any]:
        """Values that must all give a valid run config."""
        if self.type == "choice":
            return list(self.values or [])
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


class Resources(FrozenConfig):
    cpu: Float = Field(1.0, gt=0.0, description="CPUs per trial")
    gpu: Float = Field(0.0, ge=0.0, description="GPUs per trial (fractions share a GPU)")


class SchedulerSpec(FrozenConfig):
    type: Literal["none", "asha"] = "none"
    metric: str = M.PGD_ACC
    grace_period: Int = Field(1, ge=1)
    reduction_factor: Float = Field(2.0, gt=1.0)


DEFAULT_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "regularization_coefficient": {"type": "loguniform", "low": 0.01, "high": 10.0},
    "arch_mode": {"type": "choice", "values": ["mgda", "weighted"]},
    "natural_weight": {"type": "uniform", "low": 0.1, "high": 1.0, "when": {"arch_mode": "weighted"}},
    "search_attack_eps": {"type": "choice", "values": [2 / 255, 4 / 255, 8 / 255]},
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
    sampler: str = Field("nsga2", description="nsga2 | nsga3 | tpe | random | gp | qmc | an Optuna sampler class")
    sampler_options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the sampler")
    objectives: dict[str, Literal["maximize", "minimize"]] = Field(
        default_factory=lambda: dict(M.DEFAULT_OBJECTIVES),
        description=f"metric -> direction; metrics: {', '.join(M.OBJECTIVE_METRICS)}",
    )
    resources: Resources = Field(default_factory=Resources, description="per-trial {cpu, gpu}")
    scheduler: SchedulerSpec = Field(
        default_factory=SchedulerSpec, description="{type: none|asha, metric, grace_period, reduction_factor}"
    )
    max_failures: Int = Field(2, ge=0, description="retries of a failed trial from its checkpoint")
    trial_timeout_s: Float | None = Field(3600.0, gt=0, description="wall-clock limit per trial")
    storage: str | None = Field(None, description="Optuna storage URL (default sqlite:///OUT/study.db)")
    study_name: str | None = Field(None, description="Optuna study name (default: name)")
    fixed: dict[str, Any] = Field(default_factory=dict, description="run-config keys shared by all trials")
    search_space: dict[str, ParamSpec] = Field(
        default_factory=lambda: {k: ParamSpec(**v) for k, v in DEFAULT_SEARCH_SPACE.items()},
        description="run-config key -> {type, low, high, values, when}",
    )
    report: bool = Field(True, description="write the HTML report at the end (needs analysis)")

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
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
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.out).expanduser().resolve()

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.out_dir / 'study.db'}"


def make_sampler(name: str, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by short name or class name; options are checked first."""
    cls_name, defaults = SAMPLERS.get(name.lower(), (name, {}))
    cls = getattr(optuna.samplers, cls_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler)):
        known = list(SAMPLERS) + [n for n in dir(optuna.samplers) if n.endswith("Sampler")]
        raise ConfigError(f"sweep: unknown sampler '{name}'{near_miss(name, known)}; use one of {', '.join(SAMPLERS)}")
    accepted = inspect.signature(cls.__init__).parameters
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"sweep: sampler_options: {cls_name} has no option '{key}'"
                f"{near_miss(key, [p for p in accepted if p != 'self'])}"
            )
    kwargs = {**defaults, **options}
    if "seed" in accepted:
        kwargs.setdefault("seed", seed)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"sweep: sampler {cls_name}({kwargs}) failed: {error}") from None


def validate_sweep(config: SweepConfig) -> None:
    """Every key and bound checked against the real configs, before Ray starts.

    Raises:
        ConfigError: one line per problem.
    """
    errors = []
    try:
        split_run_config(config.fixed, where="sweep.fixed")
    except ConfigError as error:
        errors.extend(str(error).splitlines())
    run_keys = set(SearchConfig.model_fields) | set(SpaceConfig.model_fields)
    if not config.search_space:
        errors.append("sweep.search_space is empty: name at least one key to sample")
    for key, spec in config.search_space.items():
        where = f"sweep.search_space.{key}"
        if key not in run_keys or key in DATASET_SPACE_KEYS:
            errors.append(f"{where}: '{key}' is not a run-config key{near_miss(key, run_keys)}")
            continue
        if key in config.fixed:
            errors.append(f"{where}: '{key}' is both fixed and sampled; remove one")
        for cond, value in (spec.when or {}).items():
            other = config.search_space.get(cond)
            if other is None or other.type != "choice" or value not in (other.values or []):
                errors.append(f"{where}: 'when' needs '{cond}' to be a choice parameter with value {value!r}")
        for value in spec.probe_values():
            probe = {**config.fixed, **(spec.when or {}), key: value}
            try:
                split_run_config(probe, where=where)
            except ConfigError as error:
                errors.append(str(error).splitlines()[0].replace(f"{where}: ", f"{where}: value {value!r}: ", 1))
                break
    fixed_device = str(config.fixed.get("device", "auto"))
    if config.resources.gpu == 0 and fixed_device.startswith("cuda"):
        errors.append(f"sweep: fixed.device is '{fixed_device}' but resources.gpu is 0")
    if config.resources.gpu > 0 and fixed_device == "cpu":
        errors.append("sweep: resources.gpu > 0 but fixed.device is 'cpu'")
    try:
        make_sampler(config.sampler, config.sampler_options, config.seed)
    except ConfigError as error:
        errors.append(str(error))
    if errors:
        raise ConfigError("\n".join(errors))


class DefineByRun:
    """Optuna define-by-run space: conditional parameters follow their ``when``.

    A module-level class (not a closure) because Tune pickles the searcher.
    """

    def __init__(self, space: dict[str, ParamSpec]) -> None:
        self.space = {key: spec.to_dict() for key, spec in space.items()}

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for key, spec in sorted(self.space.items(), key=lambda kv: kv[1]["when"] is not None):
            when = spec["when"] or {}
            if any(chosen.get(k) != v for k, v in when.items()):
                continue
            if spec["type"] == "choice":
                chosen[key] = trial.suggest_categorical(key, spec["values"])
            elif spec["type"] == "int":
                chosen[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]))
            else:
                chosen[key] = trial.suggest_float(key, spec["low"], spec["high"],
                                                  log=spec["type"] == "loguniform")  # fmt: skip
        return {OPTUNA_TRIAL_KEY: trial.number}


class ConsistentOptunaSearch(OptunaSearch):
    """OptunaSearch whose study states follow the trial's real outcome.

    Tune passes an errored trial's last result; plain OptunaSearch then records
    it COMPLETE with partial metrics. Here: error -> FAIL, a search that did not
    reach its last epoch -> PRUNED, only a finished search -> COMPLETE.
    """

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        stored = self._ot_study._storage.get_trial(ot_trial._trial_id).state
        if stored.is_finished():  # settled before a driver restart: Optuna cannot tell it twice
            self._completed_trials.add(trial_id)
            return
        finished = bool(result and result.get(SEARCH_FINISHED))
        if error:
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        elif not finished:
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
        else:
            values = [float(result[m]) for m in self.metric]
            if not all(math.isfinite(v) for v in values):
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
            else:
                self._ot_study.tell(ot_trial, values)
        self._completed_trials.add(trial_id)


def _fail_running(study: optuna.Study) -> list[int]:
    """Mark RUNNING trials FAIL; returns their numbers."""
    marked = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        marked.append(trial.number)
    return marked


def _check_cluster_resources(config: SweepConfig, local: bool) -> None:
    if local:  # ray.init() will start a one-node cluster of this machine
        import torch

        per_node = [(float(os.cpu_count() or 1), float(torch.cuda.device_count()))]
    else:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        per_node = [(n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes]
    fits = any(cpu >= config.resources.cpu and gpu >= config.resources.gpu for cpu, gpu in per_node)
    autoscaling = os.environ.get("ARNAS_ALLOW_AUTOSCALING") == "1"
    if not fits and not autoscaling:
        have = ", ".join(f"{cpu:g} CPU/{gpu:g} GPU" for cpu, gpu in per_node) or "no nodes"
        raise ConfigError(
            f"sweep: resources {{cpu: {config.resources.cpu:g}, gpu: {config.resources.gpu:g}}} fit no "
            f"node of the cluster ({have}); lower resources, or set ARNAS_ALLOW_AUTOSCALING=1 "
            "when an autoscaler will add such nodes"
        )


def _absolute_paths(fixed: dict[str, Any]) -> dict[str, Any]:
    """The run config with ``data_root`` absolute: trials run in Ray's own working directory."""
    root = fixed.get("data_root", SearchConfig.model_fields["data_root"].default)
    return {**fixed, "data_root": str(Path(root).expanduser().resolve())}


def _status(result, error) -> str:
    if error is not None:
        return "ERROR"
    return "FINISHED" if result.get(SEARCH_FINISHED) else "STOPPED_EARLY"


def collect_trials(results: tune.ResultGrid, config: SweepConfig, study: optuna.Study) -> pd.DataFrame:
    """One row per Tune trial: hyperparameters, final objectives, genotype, status, timings."""
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    rows = []
    for result in results:
        metrics = dict(result.metrics or {})
        trial_config = dict(result.config or {})
        number = trial_config.get(OPTUNA_TRIAL_KEY)
        row: dict[str, Any] = {
            "trial_id": metrics.get("trial_id") or Path(result.path).name.split("_")[2],
            OPTUNA_TRIAL_KEY: number,
            "status": _status(metrics, result.error),
            "optuna_state": states.get(number, "MISSING"),
            "epochs_done": int(metrics.get(M.EPOCH, 0) or 0),
            "time_total_s": float(metrics.get("time_total_s", float("nan"))),
            "error": None if result.error is None else str(result.error).strip().splitlines()[-1][:500],
        }
        for key in config.search_space:
            row[f"hp_{key}"] = trial_config.get(key)
        for key in (M.CLEAN_ACC, M.PGD_ACC, M.VAL_EPS, M.VAL_PGD_STEPS, M.VAL_EXAMPLES, M.PARAMS_M,
                    M.TRAIN_LOSS, M.MGDA_GAMMA_MEAN, M.ALPHA_ENTROPY, M.ALPHA_MAX_WEIGHT):
            value = metrics.get(key)
            row[key] = float(value) if value is not None else float("nan")
        row[M.GENOTYPE] = metrics.get(M.GENOTYPE)
        row["path"] = result.path
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(OPTUNA_TRIAL_KEY, na_position="last").reset_index(drop=True)
    return frame


def pareto_rows(frame: pd.DataFrame, study: optuna.Study, config: SweepConfig) -> list[dict[str, Any]]:
    """Finished trials on the Pareto front (Optuna's ``best_trials`` of the study)."""
    front = {t.number for t in study.best_trials}
    chosen = frame[(frame["status"] == "FINISHED") & frame[OPTUNA_TRIAL_KEY].isin(front)]
    keep = ["trial_id", OPTUNA_TRIAL_KEY, *config.objectives, *[f"hp_{k}" for k in config.search_space], M.GENOTYPE]
    records = chosen[keep].to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]


def _write_outputs(config: SweepConfig, results: tune.ResultGrid, study: optuna.Study) -> pd.DataFrame:
    out = config.out_dir
    frame = collect_trials(results, config, study)
    atomic_write(out / "trials.parquet", lambda handle: frame.to_parquet(handle, index=False), binary=True)
    pareto = {
        "objectives": config.objectives,
        "fidelity": "finished searches only (trials stopped early or errored are excluded)",
        "trials": pareto_rows(frame, study, config),
    }
    atomic_write_text(out / "pareto.json", json.dumps(pareto, indent=2) + "\n")
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    return frame


def run_sweep(config: SweepConfig, *, address: str | None = None, resume: bool = False,
              verbose: int = 1) -> pd.DataFrame:  # fmt: skip
    """Run (or continue) a sweep; returns the ``trials.parquet`` frame."""
    validate_sweep(config)
    out = config.out_dir
    experiment = out / EXPERIMENT
    exists = tune.Tuner.can_restore(str(experiment)) if experiment.exists() else False
    if resume and not exists:
        raise ArnasError(f"--resume: no sweep to continue in '{out}'; run without --resume")
    if not resume and exists:
        raise ArnasError(f"'{out}' already holds a sweep; add --resume to continue it or choose another out")
    out.mkdir(parents=True, exist_ok=True)
    # Per-epoch checkpoints are the point; silence Tune's "excessive snapshot" warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        _check_cluster_resources(config, local=True)
    ray.init(address=address, include_dashboard=False, ignore_reinit_error=True,
             logging_level=logging.WARNING)  # fmt: skip
    try:
        if address:
            _check_cluster_resources(config, local=False)
        study_name = config.study_name or config.name
        storage = optuna.storages.RDBStorage(config.storage_url)
        metrics, directions = list(config.objectives), list(config.objectives.values())
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" / "using existing"
        study = optuna.create_study(storage=storage, study_name=study_name, load_if_exists=True,
                                    directions=directions)  # fmt: skip
        with warnings.catch_warnings():  # set_metric_names is stable in use, "experimental" in name
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metrics)
        trainable = tune.with_resources(
            tune.with_parameters(train_search, fixed=_absolute_paths(config.fixed),
                                 trial_timeout_s=config.trial_timeout_s,
                                 cpus=config.resources.cpu),
            {"cpu": config.resources.cpu, "gpu": config.resources.gpu},
        )  # fmt: skip
        if resume:
            # Optuna trials the dead driver left RUNNING stay so: Tune finishes the ones it
            # resumes, and whatever is still RUNNING after fit() is marked FAIL below.
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)  # fmt: skip
        else:
            searcher = ConsistentOptunaSearch(
                space=DefineByRun(config.search_space),
                metric=metrics,
                mode=["max" if d == "maximize" else "min" for d in directions],
                sampler=make_sampler(config.sampler, config.sampler_options, config.seed),
                storage=storage,
                study_name=study_name,
            )
            epochs = int(split_run_config(config.fixed)[0].epochs)
            if config.scheduler.type == "asha":
                scheduler = ASHAScheduler(
                    metric=config.scheduler.metric,
                    mode="max" if M.OBJECTIVE_METRICS[config.scheduler.metric] == "maximize" else "min",
                    max_t=epochs, grace_period=config.scheduler.grace_period,
                    reduction_factor=config.scheduler.reduction_factor,
                )  # fmt: skip
            else:
                scheduler = FIFOScheduler()
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                            num_samples=config.trials,
                                            max_concurrent_trials=config.max_concurrent,
                                            reuse_actors=True),  # fmt: skip
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=str(out), verbose=verbose,
                    failure_config=tune.FailureConfig(max_failures=config.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                ),
            )
        results = tuner.fit()
        study = optuna.load_study(study_name=study_name, storage=storage)
        leftovers = _fail_running(study)
        if leftovers:
            print(f"marked Optuna trials {leftovers} FAIL (left RUNNING: no Tune trial finished them)")
        frame = _write_outputs(config, results, study)
    finally:
        ray.shutdown()
    _print_summary(config, frame)
    return frame


def _print_summary(config: SweepConfig, frame: pd.DataFrame) -> None:
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    print(f"\nsweep '{config.name}': {len(frame)} trials " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    pareto = json.loads((config.out_dir / "pareto.json").read_text())["trials"]
    print(f"Pareto front ({', '.join(f'{m} {d[:3]}' for m, d in config.objectives.items())}): {len(pareto)} trials")
    for row in pareto:
        values = "  ".join(f"{m}={row[m]:.3f}" for m in config.objectives)
        hps = ", ".join(f"{k[3:]}={v:.3g}" if isinstance(v, float) else f"{k[3:]}={v}"
                        for k, v in row.items() if k.startswith("hp_") and v is not None)  # fmt: skip
        print(f"  trial {row['trial_id']} (optuna #{row[OPTUNA_TRIAL_KEY]}): {values}  [{hps}]")
    print(f"results: {config.out_dir / 'trials.parquet'}, {config.out_dir / 'pareto.json'}; "
          f"Optuna study: {config.storage_url}")  # fmt: skip


def load_sweep_config(path: Path | None, overrides: list[str], out: Path | None) -> SweepConfig:
    data = load_yaml(path or DEFAULT_CONFIG)
    data = apply_overrides(data, overrides)
    if out is not None:
        data["out"] = str(out)
    return SweepConfig.from_dict(data, where=f"sweep config {path or DEFAULT_CONFIG}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m arnas_ray.sweep",
        description=(
            "Sweep ARNAS searches with Ray Tune and an Optuna multi-objective sampler. "
            "Writes trials.parquet, pareto.json, the Optuna study (SQLite) and, with "
            "analysis installed, report.html to the run directory."
        ),
        epilog=describe_fields(SweepConfig)
        + "\n\nfixed: and search_space: take the keys of `python -m arnas_ray.search --help`."
        + f"\nDefault config: {DEFAULT_CONFIG}",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="sweep YAML (default: configs/sweep-tiny.yaml)")
    add_set_argument(parser, "--set trials=4 --set fixed.epochs=2 (dotted keys nest)")
    parser.add_argument("--out", type=Path, help="run directory (overrides the config's out)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    parser.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: RAY_ADDRESS or local)")
    parser.add_argument("--smoke-test", action="store_true", help="2 trials of 1 short epoch")
    parser.add_argument("--quiet", action="store_true", help="no Tune progress table")
    return parser.parse_args(argv)


SMOKE_TEST = ["trials=2", "fixed.epochs=1", "fixed.steps_per_epoch=2", "fixed.val_limit=16"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = (SMOKE_TEST if args.smoke_test else []) + args.overrides
    config = load_sweep_config(args.config, overrides, args.out)
    started = time.time()
    run_sweep(config, address=args.address, resume=args.resume, verbose=0 if args.quiet else 1)
    if config.report:
        _write_report(config.out_dir)
    print(f"sweep took {time.time() - started:.0f}s")
    return 0


def _write_report(out: Path) -> None:
    """Run ``python -m analysis.report`` (a separate command: arnas_ray never imports analysis)."""
    done = subprocess.run([sys.executable, "-m", "analysis.report", str(out)], capture_output=True, text=True)
    if done.returncode == 0:
        print(done.stdout.strip())
    else:
        print(f"report not written: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")


if __name__ == "__main__":
    run_cli(main)
