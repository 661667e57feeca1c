"""The Optuna side of a sweep: define-by-run sampling and study states that
follow each Tune trial's real outcome."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend
from ray.tune.search.optuna import OptunaSearch

from arnas_common.errors import ConfigError
from arnas_ray.sweep.config import STORAGE_ENV
from arnas_ray.sweep.config import Limit
from arnas_ray.sweep.config import mask_url
from arnas_ray.sweep.space import ParamSpec
from arnas_ray.sweep.space import sampling_order
from arnas_ray.sweep.trainable import OPTUNA_TRIAL_KEY
from arnas_ray.sweep.trainable import SEARCH_FINISHED

__all__ = ["RUN_ID_ATTR", "ConsistentOptunaSearch", "DefineByRun", "fail_running", "open_storage"]

#: Optuna trial user attribute naming the sweep run (run directory) that asked for the trial.
RUN_ID_ATTR = "arnas_run_id"
_PASSWORDS: dict[str, str] = {}
_SCHEMA_ATTEMPTS = 5  # masked URL -> real URL, for unpickling a searcher on --resume


class MaskedRDBStorage(RDBStorage):
    """An RDB storage whose pickles (Tune's searcher state, ``tuner.pkl``) hold the
    URL with its password masked; unpickling looks the real URL up again."""

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["url"] = mask_url(state["url"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        masked = state["url"]
        real = _PASSWORDS.get(masked)
        from_env = os.environ.get(STORAGE_ENV)
        if real is None and from_env and mask_url(from_env) == masked:
            real = from_env
        super().__setstate__({**state, "url": real or masked})


#: Scheme of Optuna's journal storage on a file (no database server; meant for NFS):
#: ``journal:///ABSOLUTE/PATH.log``.
JOURNAL_SCHEME = "journal://"


def _open_journal(url: str, check_only: bool) -> optuna.storages.BaseStorage | None:
    path = Path(url[len(JOURNAL_SCHEME) :])
    if not path.is_absolute():
        raise ConfigError(
            f"sweep: storage {url}: a journal file needs an absolute path, journal:///ABS/PATH.log"
        )
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise ConfigError(f"sweep: storage {url}: '{path.parent}' is not a writable folder")
    if check_only:
        return None
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def open_storage(url: str, check_only: bool = False) -> optuna.storages.BaseStorage | None:
    """The study's storage: an SQLAlchemy URL (SQLite, PostgreSQL, ...) or Optuna's journal
    file (``journal:///ABS/PATH.log``); ``check_only``: only check the database driver is
    installed (or the journal's folder writable).

    Raises:
        ConfigError: the URL's database driver is missing, or the database cannot be reached.
    """
    if url.startswith(JOURNAL_SCHEME):
        return _open_journal(url, check_only)
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as error:
        extra = (
            " (pip install -e '.[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
        )
        raise ConfigError(
            f"sweep: storage {mask_url(url)} needs a database driver that is not installed: "
            f"{error}{extra}"
        ) from None
    if check_only:
        return None
    _PASSWORDS[mask_url(url)] = url
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return MaskedRDBStorage(url, heartbeat_interval=None)
        except sqlalchemy.exc.IntegrityError:
            # Two drivers creating the tables of a fresh database at once: one loses the
            # race on PostgreSQL's catalog; the tables exist when it tries again.
            time.sleep(0.5 * (attempt + 1))
        except Exception as error:  # SQLAlchemy raises many types for an unreachable database
            message = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise ConfigError(
                f"sweep: cannot open storage {mask_url(url)}: "
                f"{message.replace(url, mask_url(url))}"
            ) from None
    raise ConfigError(
        f"sweep: cannot create the tables of storage {mask_url(url)} ({_SCHEMA_ATTEMPTS} tries)"
    )


class DefineByRun:
    """Optuna define-by-run space: conditional parameters follow their ``when``.

    A module-level class (not a closure) because Tune pickles the searcher.
    """

    def __init__(self, space: dict[str, ParamSpec]) -> None:
        # Conditions first, in the when-graph's topological order (chains of conditions work).
        self.space = {key: space[key].to_dict() for key in sampling_order(space)}

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        # The sampler's relative step runs for every trial, enqueued ones included (whose
        # fixed values skip it otherwise): a genetic sampler then counts them in a generation.
        _ = trial.relative_params
        chosen: dict[str, Any] = {}
        for key, spec in self.space.items():
            when = spec["when"] or {}
            if any(chosen.get(k) != v for k, v in when.items()):
                continue
            if spec["type"] == "choice":
                chosen[key] = trial.suggest_categorical(key, spec["values"])
            elif spec["type"] == "int":
                chosen[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]))
            else:
                chosen[key] = trial.suggest_float(
                    key, spec["low"], spec["high"], log=spec["type"] == "loguniform"
                )
        return {OPTUNA_TRIAL_KEY: trial.number}


class ConsistentOptunaSearch(OptunaSearch):
    """OptunaSearch whose study states follow the trial's real outcome.

    Tune passes an errored trial's last result; plain OptunaSearch then records
    it COMPLETE with partial metrics. Here: error -> FAIL, a search that did not
    reach its last epoch -> PRUNED, only a finished search -> COMPLETE.
    """

    def __init__(
        self,
        *args: Any,
        run_id: str | None = None,
        constraints: dict[str, Limit] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.run_id = run_id
        self.constraints = dict(constraints or {})
        self._constrained: set[str] = set()  # trial ids whose constraints Optuna has

    def suggest(self, trial_id: str) -> dict | None:
        suggestion = super().suggest(trial_id)
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and self.run_id:  # a trial just asked for: tag it as this run's
            ot_trial.set_user_attr(RUN_ID_ATTR, self.run_id)
        return suggestion

    def _set_constraints(self, trial_id: str, result: dict) -> None:
        """Tell the trial's constraint violations once (Optuna keeps the first values)."""
        constraints = self.__dict__.get("constraints") or {}  # absent in a searcher pickled by 0.1
        constrained = self.__dict__.setdefault("_constrained", set())
        if not constraints or trial_id in constrained or trial_id not in self._ot_trials:
            return
        for metric, violation in zip(constraints, violations(constraints, result)):
            self._ot_trials[trial_id].set_constraint(metric, violation)
        constrained.add(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        if result.get(SEARCH_FINISHED):  # now: a sweep that ends on its budget never completes it
            self._set_constraints(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        study = self._ot_study
        assert study is not None  # set up before any trial is suggested
        stored = study._storage.get_trial(ot_trial._trial_id).state
        if stored.is_finished():  # settled before a driver restart: Optuna cannot tell it twice
            self._completed_trials.add(trial_id)
            return
        finished = bool(result and result.get(SEARCH_FINISHED))
        if not error:  # before tell: the sampler reads them as it settles
            self._set_constraints(trial_id, result or {})
        if error:
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        elif not finished:
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
        else:
            values = [float(result[m]) for m in self.metric]  # a finished search's result
            if not all(math.isfinite(v) for v in values):
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
            else:
                self._ot_study.tell(ot_trial, values)
        self._completed_trials.add(trial_id)


def violations(constraints: dict[str, Limit], metrics: dict[str, Any]) -> list[float]:
    """Each limit's violation by ``metrics`` (Optuna's convention: <= 0 feasible); a missing or
    non-finite metric is infinitely infeasible."""
    out = []
    for metric, limit in constraints.items():
        value = metrics.get(metric)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = math.nan
        out.append(limit.violation(number) if math.isfinite(number) else math.inf)
    return out


def fail_running(study: optuna.Study, run_id: str | None) -> list[int]:
    """Mark this run's RUNNING trials FAIL (other drivers' are theirs); return their numbers."""
    marked = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(RUN_ID_ATTR) != run_id:
            continue
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        marked.append(trial.number)
    return marked
