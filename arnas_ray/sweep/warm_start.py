"""Warm starts: known configurations first, and an earlier sweep's results as a head start.

* ``enqueue:`` in the sweep config lists search-space values to evaluate first
  (Optuna's ``enqueue_trial``; optuna#1930, #3388);
* ``--warm-start RUN_DIR`` adds the finished trials of an earlier sweep with the same
  objectives and a compatible space to the new study as completed trials, so the sampler
  starts from them. They are asked and told through the study's own sampler (Optuna's
  public ``enqueue_trial`` / ``ask`` / ``tell``), so a genetic sampler counts them as its
  first generation: NSGA-II's first parents are among them.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from arnas_common.dotted import get_dotted
from arnas_common.errors import ConfigError
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialRecord
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.space import ParamSpec
from arnas_ray.sweep.space import check_value

__all__ = [
    "ENQUEUED_ATTR",
    "WARM_START_ATTR",
    "add_warm_start",
    "distribution",
    "read_warm_start",
]

#: Optuna trial user attributes marking where a trial's configuration came from.
ENQUEUED_ATTR = "arnas_enqueued"
WARM_START_ATTR = "arnas_warm_start"


def distribution(spec: ParamSpec) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution :class:`~arnas_ray.sweep.optuna_bridge.DefineByRun` samples."""
    if spec.type == "choice":
        return optuna.distributions.CategoricalDistribution(list(spec.values or []))
    assert spec.low is not None and spec.high is not None
    if spec.type == "int":
        return optuna.distributions.IntDistribution(int(spec.low), int(spec.high))
    return optuna.distributions.FloatDistribution(
        spec.low, spec.high, log=spec.type == "loguniform"
    )


def read_warm_start(run_dir: Path, config: SweepConfig) -> list[TrialRecord]:
    """The finished trials of the sweep in ``run_dir``, checked against ``config``.

    Raises:
        ArnasError: no sweep there, other objectives, or trials the space cannot hold.
    """
    result = SweepResult.read(run_dir)
    if dict(result.objectives) != dict(config.objectives):
        raise ConfigError(
            f"--warm-start: '{run_dir}' optimised {dict(result.objectives)}, this sweep "
            f"{dict(config.objectives)}; warm-start only from a sweep with the same objectives"
        )
    trials = result.finished()
    if not trials:
        raise ConfigError(f"--warm-start: '{run_dir}' has no finished trial to start from")
    for trial in trials:
        for key in trial.sampled:
            where = f"--warm-start: trial {trial.trial_id}'s {key}"
            spec = config.search_space.get(key)
            if spec is None:
                raise ConfigError(
                    f"{where} is not sampled by this sweep; use a sweep of the same space"
                )
            check_value(spec, get_dotted(trial.config, key), where)
    return trials


def add_warm_start(
    study: optuna.Study, config: SweepConfig, trials: list[TrialRecord], source: str
) -> list[int]:
    """Tell ``trials`` to ``study`` as completed, through its sampler; returns their numbers."""
    numbers = []
    for trial in trials:
        params = {key: get_dotted(trial.config, key) for key in trial.sampled}
        study.enqueue_trial(params, user_attrs={WARM_START_ATTR: source})
        asked = study.ask({key: distribution(config.search_space[key]) for key in params})
        # Fixed parameters skip the sampler's relative step; asking for it makes a genetic
        # sampler place the trial in its current generation (what makes it a parent).
        _ = asked.relative_params
        study.tell(asked, [trial.value(m) for m in config.objectives])
        numbers.append(asked.number)
    return numbers
