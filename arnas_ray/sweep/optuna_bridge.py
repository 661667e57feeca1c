"""The Optuna side of a sweep, Ray-free: the study's storage, define-by-run sampling,
constraint violations, and the reconciliation of trials a dead driver left RUNNING.
(:mod:`arnas_ray.sweep.searcher` is the Tune searcher built on it.)"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend

from arnas_common.errors import ConfigError
from arnas_ray.sweep.config import Limit
from arnas_ray.sweep.config import mask_url
from arnas_ray.sweep.space import ParamSpec
from arnas_ray.sweep.space import sampling_order

__all__ = [
    "JOURNAL_SCHEME",
    "RUN_ID_ATTR",
    "DefineByRun",
    "fail_running",
    "open_storage",
    "violations",
]

#: Optuna trial user attribute naming the sweep run (run directory) that asked for the trial.
RUN_ID_ATTR = "arnas_run_id"
_SCHEMA_ATTEMPTS = 5


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
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return RDBStorage(url, heartbeat_interval=None)
        except sqlalchemy.exc.DBAPIError as error:
            if not _lost_schema_race(error):
                raise ConfigError(_cannot_open(url, error)) from None
            # Two drivers creating the tables of a fresh database at once: one loses the
            # race; the tables exist when it tries again.
            time.sleep(0.5 * (attempt + 1))
        except Exception as error:  # SQLAlchemy raises many types for an unreachable database
            raise ConfigError(_cannot_open(url, error)) from None
    raise ConfigError(
        f"sweep: cannot create the tables of storage {mask_url(url)} ({_SCHEMA_ATTEMPTS} tries)"
    )


def _lost_schema_race(error: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether ``error`` is another driver creating the same tables at that moment: a unique
    violation in PostgreSQL's catalog, or SQLite's "table ... already exists" / "locked"."""
    if isinstance(error, sqlalchemy.exc.IntegrityError):
        return True
    text = str(error.orig)
    return isinstance(error, sqlalchemy.exc.OperationalError) and (
        "already exists" in text or "database is locked" in text
    )


def _cannot_open(url: str, error: BaseException) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"sweep: cannot open storage {mask_url(url)}: {message.replace(url, mask_url(url))}"


class DefineByRun:
    """Optuna define-by-run space: conditional parameters follow their ``when``.

    A module-level class (not a closure) because Tune pickles the searcher. Returns the
    sampled values (the trial's configuration).
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
        return chosen


def violations(constraints: Mapping[str, Limit], metrics: Mapping[str, Any]) -> list[float]:
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
