"""A sweep's outcome from Tune's results and the Optuna study, made to agree.

Every Tune trial that started becomes one :class:`TrialRecord`; trials the sweep itself
stopped (its epoch budget) are settled in the study as the searcher would have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import optuna
from ray import tune

from arnas_common import metrics as M
from arnas_common.cli import resolve_path
from arnas_common.dotted import nest_dotted
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialRecord
from arnas_ray.results import TrialStatus
from arnas_ray.results import parse_alphas
from arnas_ray.search.run_config import RunConfig
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.moasha import total_violation
from arnas_ray.sweep.searcher import tune_trial_numbers
from arnas_ray.sweep.trainable import SEARCH_FINISHED
from search_spaces.genotype import Genotype
from search_spaces.spec import NetworkSpec

__all__ = ["absolute_paths", "collect_result", "settle_stopped"]


def absolute_paths(fixed: RunConfig) -> RunConfig:
    """The run config with ``data_root`` absolute: trials run in Ray's own working directory."""
    return fixed.with_dotted({"data_root": str(resolve_path(fixed.search.data_root))})


def _status(metrics: dict[str, Any], error: Exception | None) -> TrialStatus:
    if error is not None:
        return TrialStatus.ERROR
    return TrialStatus.FINISHED if metrics.get(SEARCH_FINISHED) else TrialStatus.STOPPED_EARLY


def _checkpoint_history(result: Any) -> tuple[dict[str, Any], ...] | None:
    """The epochs the trial's latest checkpoint holds (``progress.json``), or ``None``.

    With remote trial storage Tune syncs a trial's result files on its own schedule, so
    after a resume they may lack or repeat epochs; the checkpoint's own record does not.
    Untrusted: rows of numbers with an integer epoch, in order, or nothing."""
    checkpoint = result.checkpoint
    if checkpoint is None:
        return None
    try:
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/progress.json") as f:
            rows = json.loads(f.read(1 << 24))["history"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        and type(r.get(M.EPOCH)) is int
        and all(k in M.HISTORY_KEYS and isinstance(v, (int, float)) for k, v in r.items())
        for r in rows
    ):
        return None
    if [r[M.EPOCH] for r in rows] != list(range(1, len(rows) + 1)):
        return None
    return tuple(dict(r) for r in rows)


def _history(result: Any) -> tuple[dict[str, Any], ...]:
    recorded = _checkpoint_history(result)
    if recorded:
        return recorded
    frame = result.metrics_dataframe
    if frame is None or frame.empty:
        return ()
    keys = [k for k in M.HISTORY_KEYS if k in frame.columns]
    records = frame[keys].to_dict(orient="records")
    return tuple(
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records
    )


def _own_metrics(result: Any) -> dict[str, Any]:
    """A Tune result's last metrics, or none when it never reported an epoch: Ray may hand
    a trial the epoch budget stopped before it started another trial's last metrics."""
    metrics = dict(result.metrics or {})
    return metrics if metrics.get(M.EPOCH) else {}


def collect_result(
    results: tune.ResultGrid, config: SweepConfig, study: optuna.Study, run_id: str | None = None
) -> SweepResult:
    """The sweep's :class:`SweepResult` from Tune's results and the study's states."""
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    numbers = tune_trial_numbers(study, run_id)
    fixed = absolute_paths(config.fixed)
    records = []
    for result in results:  # type: ignore[attr-defined]  # ResultGrid is a sequence
        metrics = _own_metrics(result)
        if not metrics and result.error is None:
            continue  # never started (the epoch budget ran out first)
        trial_id = str((result.metrics or {}).get("trial_id"))  # Tune reports it, errors too
        number = numbers.get(trial_id)
        sampled = {k: v for k, v in (result.config or {}).items() if k in config.search_space}
        text = metrics.get(M.GENOTYPE)
        alphas = metrics.get(M.ALPHAS)
        network = metrics.get(M.NETWORK)
        records.append(
            TrialRecord(
                trial_id=trial_id,
                status=_status(metrics, result.error),
                config=nest_dotted({**fixed.to_flat(), **sampled}),  # as run, unvalidated
                sampled=tuple(sampled),
                metrics={
                    k: float(metrics[k]) for k in M.TRIAL_METRICS if metrics.get(k) is not None
                },
                genotype=Genotype.from_json(text) if isinstance(text, str) else None,
                number=number,
                optuna_state="MISSING" if number is None else states.get(number, "MISSING"),
                epochs_done=int(metrics.get(M.EPOCH, 0) or 0),
                time_total_s=float(metrics.get("time_total_s", float("nan"))),
                error=None
                if result.error is None
                else str(result.error).strip().splitlines()[-1][:500],
                history=_history(result),
                feasible=(
                    total_violation(config.constraints, metrics) <= 0
                    if config.constraints
                    else None
                ),
                alphas=parse_alphas(alphas) if isinstance(alphas, str) else {},
                network=NetworkSpec.from_dict(json.loads(network))
                if isinstance(network, str)
                else None,
            )
        )
    records.sort(
        key=lambda r: (r.number is None, r.number if r.number is not None else 0, r.trial_id)
    )
    return SweepResult(
        name=config.name,
        objectives=dict(config.objectives),
        trials=tuple(records),
        run_id=run_id,
        reference_point=config.reference(),
        constraints={
            m: limit.to_dict(exclude_none=True) for m, limit in config.constraints.items()
        },
    )


def settle_stopped(
    study: optuna.Study,
    results: tune.ResultGrid,
    objectives: Mapping[str, str],
    run_id: str | None = None,
) -> None:
    """Trials the sweep itself ended (its epoch budget stops the experiment) are never told
    to the searcher: settle them as the searcher would, so the study agrees with
    result.json (a finished search COMPLETE with its objectives, any other PRUNED). A trial
    suggested but never started is left to :func:`fail_running`, and result.json omits it."""
    running = {
        t.number
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    }
    numbers = tune_trial_numbers(study, run_id)
    for result in results:  # type: ignore[attr-defined]  # ResultGrid is a sequence
        metrics = _own_metrics(result)
        number = numbers.get(str((result.metrics or {}).get("trial_id")))
        if number not in running or result.error is not None or not metrics:
            continue  # settled already, an error or never started: fail_running marks it FAIL
        values = [metrics.get(m) for m in objectives]
        if metrics.get(SEARCH_FINISHED) and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values
        ):
            study.tell(number, [float(v) for v in values])  # type: ignore[arg-type]
        else:
            study.tell(number, state=optuna.trial.TrialState.PRUNED)
