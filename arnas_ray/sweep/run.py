"""Run (or continue) a sweep: Ray Tune trials, an Optuna study, one :class:`SweepResult`.

Every trial is one ARNAS search (:mod:`arnas_ray.sweep.trainable`) run by Ray
Tune; an Optuna multi-objective sampler (NSGA-II by default) proposes loss
weights and search-space hyperparameters through Tune's ``OptunaSearch``. The
study lives in an RDB storage (SQLite in the run directory by default; any
SQLAlchemy URL, e.g. PostgreSQL shared by several drivers).

Consistency rules (Ray Tune + OptunaSearch weak spots, handled here):

* an errored trial is recorded FAIL in the study, whatever it reported
  before; a trial that stopped before its last epoch (scheduler, time limit)
  is recorded PRUNED and never reaches the Pareto front;
* each run directory has a run id, recorded on every Optuna trial it asks
  for; reconciliation after ``fit()`` touches only this run's trials, so
  drivers sharing one study never fail each other's work;
* one driver per run directory (an exclusive file lock);
* ``--resume`` restores the Tune experiment with the same trial IDs and
  refuses a changed config; Optuna trials of this run left RUNNING by a
  crashed driver are marked FAIL: the study, Tune's results and the
  :class:`~arnas_ray.results.SweepResult` agree;
* configuration errors are found in the driver, before ``Tuner.fit()``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune

from arnas_common import metrics as M
from arnas_common.dotted import get_dotted
from arnas_common.errors import ArnasError
from arnas_common.errors import ConfigError
from arnas_common.rayenv import restrict_token_file
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialRecord
from arnas_ray.sweep import rundir
from arnas_ray.sweep.cluster import check_cluster_resources
from arnas_ray.sweep.cluster import check_shared_out
from arnas_ray.sweep.cluster import warn_if_exposed
from arnas_ray.sweep.collect import absolute_paths
from arnas_ray.sweep.collect import collect_result
from arnas_ray.sweep.collect import settle_stopped
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.config import validate_sweep
from arnas_ray.sweep.console import ProgressLine
from arnas_ray.sweep.console import quiet_libraries
from arnas_ray.sweep.faults import check_reachable
from arnas_ray.sweep.faults import fatal_reason
from arnas_ray.sweep.faults import terminate_as_interrupt
from arnas_ray.sweep.optuna_bridge import DefineByRun
from arnas_ray.sweep.optuna_bridge import fail_running
from arnas_ray.sweep.optuna_bridge import open_storage
from arnas_ray.sweep.samplers import SamplerSpec
from arnas_ray.sweep.schedulers import build_scheduler
from arnas_ray.sweep.searcher import StudySearcher
from arnas_ray.sweep.searcher import storage_password_env
from arnas_ray.sweep.tracking import make_callbacks
from arnas_ray.sweep.tracking import tracking_env
from arnas_ray.sweep.trainable import train_search
from arnas_ray.sweep.warm_start import ENQUEUED_ATTR
from arnas_ray.sweep.warm_start import add_warm_start
from arnas_ray.sweep.warm_start import read_warm_start

__all__ = ["run_sweep", "write_report"]

MOASHA_STATE = "moasha.json"


class EpochBudget(tune.Stopper):
    """Stops the whole sweep once its trials have run ``budget`` epochs in total (each
    trial's highest reported epoch, so a repeated final result is not counted twice)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.epochs: dict[str, int] = {}

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.epochs[trial_id] = max(self.epochs.get(trial_id, 0), int(result.get(M.EPOCH, 0) or 0))
        return False

    @property
    def spent(self) -> int:
        return sum(self.epochs.values())

    def stop_all(self) -> bool:
        return self.spent >= self.budget


def _make_scheduler(config: SweepConfig) -> Any:
    return build_scheduler(
        config.scheduler,
        config.objectives,
        config.fixed.search.epochs,
        constraints=config.constraints,
        state_path=config.out_dir / MOASHA_STATE,
    )


def run_sweep(
    config: SweepConfig,
    *,
    address: str | None = None,
    resume: bool = False,
    verbose: int = 1,
    warm_start: Path | None = None,
) -> SweepResult:
    """Run (or continue) a sweep; return its :class:`SweepResult` (also written to the run dir).

    ``verbose``: 0 silent, 1 one line per trial epoch (:mod:`arnas_ray.sweep.console`),
    2 Ray Tune's own progress output and library warnings.
    """
    validate_sweep(config)
    if warm_start is not None and resume:
        raise ConfigError("--warm-start starts a new run; it cannot be combined with --resume")
    warm = (
        (read_warm_start(warm_start, config), str(warm_start)) if warm_start is not None else None
    )
    storage_url = config.resolved_storage_url()
    open_storage(storage_url, check_only=True)  # a missing database driver fails here, before Ray
    out = config.out_dir
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        check_cluster_resources(config, local=True)
    else:
        check_reachable(address)  # Ray itself retries an unreachable address for minutes
    with rundir.claim(out, config, resume=resume) as run_id, terminate_as_interrupt():
        # Per-epoch checkpoints are the point; silence Tune's "excessive snapshot" warning.
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        if verbose < 2:  # our own progress lines: Tune's legacy output at verbose 0 prints nothing
            quiet_libraries()
            os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        started_ray = not ray.is_initialized()  # a Ray session of the caller's stays theirs
        env = tracking_env(config.callbacks, out)
        os.environ.update(env)  # and for the driver's own W&B calls
        try:
            ray.init(
                # "local": a new one-node cluster, never one `ray start` left on this machine
                address=address or "local",
                runtime_env={"env_vars": env} if env else None,
                include_dashboard=False,
                ignore_reinit_error=True,
                logging_level=logging.WARNING if verbose < 2 else logging.INFO,
                log_to_driver=verbose >= 2,
            )  # trial errors still reach result.json
        except ConnectionError as error:
            reason = (str(error).strip().splitlines() or ["no Ray cluster"])[0][:200]
            raise ConfigError(
                f"sweep: cannot connect to Ray at --address {address}: {reason}"
            ) from None
        restrict_token_file()
        if started_ray and not address:
            warn_if_exposed()
        try:
            if address:
                check_cluster_resources(config, local=False)
                if config.trial_storage is None:
                    check_shared_out(out)
            try:
                result = _fit(
                    config, storage_url, run_id, resume=resume, verbose=verbose, warm=warm
                )
            except Exception as error:
                cause = fatal_reason(error)
                if cause is None:
                    raise
                raise ArnasError(
                    f"sweep stopped: {cause}; the run directory keeps every finished trial and "
                    f"checkpoint: fix that, then continue with --resume --out {out}"
                ) from None
        finally:
            if started_ray:
                ray.shutdown()
        result.write(out)
    print_summary(config, result)
    return result


def _fit(
    config: SweepConfig,
    storage_url: str,
    run_id: str,
    *,
    resume: bool,
    verbose: int,
    warm: tuple[list[TrialRecord], str] | None = None,
) -> SweepResult:
    out = config.out_dir
    study_name = config.study_name or config.name
    storage = open_storage(storage_url)
    assert storage is not None  # check_only=False opens it
    metrics, directions = list(config.objectives), list(config.objectives.values())
    optuna.logging.set_verbosity(
        optuna.logging.WARNING
    )  # no "new study created" / "using existing"
    study = optuna.create_study(
        storage=storage, study_name=study_name, load_if_exists=True, directions=directions
    )
    with warnings.catch_warnings():  # set_metric_names is stable in use, "experimental" in name
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metrics)
    trainable = tune.with_resources(
        tune.with_parameters(
            train_search,
            fixed=absolute_paths(config.fixed),
            trial_timeout_s=config.trial_timeout_s,
            cpus=config.resources.cpu,
        ),
        {"cpu": config.resources.cpu, "gpu": config.resources.gpu},
    )
    storage_path, experiment = rundir.experiment_location(out, config, run_id)
    epochs = config.fixed.search.epochs
    callbacks: list[tune.Callback] = (
        [ProgressLine(config.objectives, config.trials, epochs)] if verbose == 1 else []
    )
    callbacks += make_callbacks(config.callbacks, config.callback_options, out, config.name)
    # Tune's own loggers only as the sweep names them (tracking.ALWAYS_ON plus callbacks)
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    if resume:
        # Optuna trials the dead driver left RUNNING stay so: Tune finishes the ones it
        # resumes, and whatever of this run is still RUNNING after fit() is marked FAIL.
        tuner = tune.Tuner.restore(
            experiment,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
    else:
        sampler_spec = SamplerSpec(
            config.sampler, dict(config.sampler_options), config.seed, tuple(config.constraints)
        )
        sampler = sampler_spec.build()
        if warm:  # first, through the sampler the searcher will use: its first generation
            seeded = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
            numbers = add_warm_start(seeded, config, warm[0], source=warm[1])
            print(f"warm start: {len(numbers)} finished trials added to the study as completed")
        for params in config.enqueue:  # then the configurations to evaluate first
            study.enqueue_trial(params, user_attrs={ENQUEUED_ATTR: True})
        searcher = StudySearcher(
            space=DefineByRun(config.search_space),
            objectives=config.objectives,
            study_name=study_name,
            storage_url=storage_url,
            sampler=sampler_spec,
            run_id=run_id,
            constraints=config.constraints,
            storage=storage,
            sampler_instance=sampler,
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_make_scheduler(config),
                num_samples=config.trials,
                max_concurrent_trials=config.max_concurrent,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=rundir.EXPERIMENT,
                storage_path=storage_path,
                verbose=1 if verbose >= 2 else 0,
                callbacks=callbacks,
                stop=EpochBudget(config.budget_epochs) if config.budget_epochs else None,
                failure_config=tune.FailureConfig(max_failures=config.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
    with storage_password_env(storage_url):  # a resumed searcher reopens the study
        results = tuner.fit()
    study = optuna.load_study(study_name=study_name, storage=storage)
    settle_stopped(study, results, config.objectives, run_id)
    leftovers = fail_running(study, run_id)
    if leftovers:
        print(f"marked Optuna trials {leftovers} FAIL (left RUNNING: no Tune trial finished them)")
    return collect_result(results, config, study, run_id)


def print_summary(config: SweepConfig, result: SweepResult) -> None:
    counts: dict[str, int] = {}
    for trial in result.trials:
        counts[str(trial.status)] = counts.get(str(trial.status), 0) + 1
    print(
        f"\nsweep '{config.name}': {len(result.trials)} trials "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    front = result.front()
    print(
        f"Pareto front ({', '.join(f'{m} {d[:3]}' for m, d in config.objectives.items())}): "
        f"{len(front)} trials"
    )
    for trial in front:
        values = "  ".join(f"{m}={trial.value(m):.3f}" for m in config.objectives)
        hps = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in ((k, get_dotted(trial.config, k)) for k in trial.sampled)
        )
        print(f"  trial {trial.trial_id} (optuna #{trial.number}): {values}  [{hps}]")
    print(
        f"results: {config.out_dir / 'result.json'} (also trials.parquet, pareto.json); "
        f"Optuna study: {config.display_storage_url}"
    )
    if config.display_storage_url.startswith("sqlite"):
        print(
            f"browse the study: optuna-dashboard {config.display_storage_url}  (pip install -e "
            f"'.[dashboard]')"
        )


def write_report(out: Path) -> None:
    """Run ``python -m analysis.report`` (a separate command: arnas_ray never imports analysis)."""
    done = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(out)], capture_output=True, text=True
    )
    if done.returncode == 0:
        print(done.stdout.strip())
    else:
        print(
            f"report not written: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
