"""Our Ray Tune searcher over Optuna's ask-and-tell interface.

Ray's own ``OptunaSearch`` keeps the Optuna trials, the study and its storage in its
pickled state; ours keeps only what is ours, through public interfaces on both sides:

* each Tune trial is one Optuna trial, asked with :meth:`optuna.Study.ask`; the Tune trial
  id and the sweep run are user attributes of that trial, so the id-to-number map lives
  in the study (:func:`tune_trial_numbers` reads it back);
* a study state follows the trial's real outcome: an error is FAIL, a search stopped
  before its last epoch PRUNED, only a finished search with finite objectives COMPLETE,
  and a trial is told once (one settled before a driver restart is left alone);
* :meth:`StudySearcher.save` writes JSON (the map, the run, the study's name and the
  storage URL with its password masked); no storage object and no password is pickled
  or written, and no module-level state carries one: a resumed driver gives the password
  again through ``ARNAS_STORAGE_URL`` (:func:`storage_password_env`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher

from arnas_common.errors import ArnasError
from arnas_ray.sweep.config import STORAGE_ENV
from arnas_ray.sweep.config import Limit
from arnas_ray.sweep.config import mask_url
from arnas_ray.sweep.optuna_bridge import JOURNAL_SCHEME
from arnas_ray.sweep.optuna_bridge import RUN_ID_ATTR
from arnas_ray.sweep.optuna_bridge import DefineByRun
from arnas_ray.sweep.optuna_bridge import open_storage
from arnas_ray.sweep.optuna_bridge import violations
from arnas_ray.sweep.samplers import SamplerSpec
from arnas_ray.sweep.trainable import SEARCH_FINISHED

__all__ = [
    "STATE_FORMAT",
    "TUNE_TRIAL_ATTR",
    "StudySearcher",
    "storage_password_env",
    "tune_trial_numbers",
]

#: Optuna trial user attribute holding the Tune trial id the trial was asked for.
TUNE_TRIAL_ATTR = "arnas_tune_trial_id"
#: ``format`` of the searcher's saved state.
STATE_FORMAT = "arnas-study-searcher/1"


def masked_storage(url: str) -> str:
    """``url`` as it may be written: the password masked (a journal path has none)."""
    return url if url.startswith(JOURNAL_SCHEME) else mask_url(url)


def tune_trial_numbers(study: optuna.Study, run_id: str | None) -> dict[str, int]:
    """Tune trial id -> Optuna trial number for the trials the run ``run_id`` asked for."""
    return {
        str(t.user_attrs[TUNE_TRIAL_ATTR]): t.number
        for t in study.get_trials(deepcopy=False)
        if TUNE_TRIAL_ATTR in t.user_attrs and t.user_attrs.get(RUN_ID_ATTR) == run_id
    }


@contextlib.contextmanager
def storage_password_env(url: str) -> Iterator[None]:
    """While a resumed searcher reopens its study: ``ARNAS_STORAGE_URL`` holds ``url``
    when it has a password the searcher's state does not (it keeps the URL masked)."""
    if masked_storage(url) == url or os.environ.get(STORAGE_ENV) == url:
        yield
        return
    before = os.environ.get(STORAGE_ENV)
    os.environ[STORAGE_ENV] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STORAGE_ENV, None)
        else:
            os.environ[STORAGE_ENV] = before


class StudySearcher(Searcher):
    """A Tune searcher whose every trial is an Optuna trial of one (possibly shared) study.

    Args:
        space: the define-by-run space (conditional keys follow their ``when``).
        objectives: metric -> ``maximize`` or ``minimize``, in the study's order.
        study_name, storage_url: the study, created by the driver before Tune starts.
        sampler: how to build the study's sampler again after a driver restart.
        run_id: the sweep run (run directory) asking; other drivers' trials are theirs.
        constraints: metric limits, told as Optuna constraints before a trial settles.
        storage, sampler_instance: the driver's open storage and sampler, used (not
            pickled) until the driver ends.
    """

    CKPT_FILE_TMPL = "searcher-state-{}.json"

    def __init__(
        self,
        *,
        space: DefineByRun,
        objectives: Mapping[str, str],
        study_name: str,
        storage_url: str,
        sampler: SamplerSpec,
        run_id: str,
        constraints: Mapping[str, Limit] | None = None,
        storage: optuna.storages.BaseStorage | None = None,
        sampler_instance: optuna.samplers.BaseSampler | None = None,
    ) -> None:
        metrics = list(objectives)
        super().__init__(
            metric=metrics,  # type: ignore[arg-type]  # Tune's multi-objective form
            mode=["max" if objectives[m] == "maximize" else "min" for m in metrics],  # type: ignore[arg-type]
        )
        self.space = space
        self.objectives = dict(objectives)
        self.study_name = study_name
        self.storage_url = storage_url
        self.sampler = sampler
        self.run_id = run_id
        self.constraints = dict(constraints or {})
        self.numbers: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        self.constrained: set[str] = set()  # trial ids whose constraints Optuna has
        self._storage = storage
        self._sampler_instance = sampler_instance
        self._study: optuna.Study | None = None
        self._asked: dict[str, optuna.Trial] = {}
        self._storage_ids: dict[str, int] = {}

    # -- pickling (Tune keeps the searcher in tuner.pkl): nothing secret, nothing live --
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(
            storage_url=masked_storage(self.storage_url),
            _storage=None,
            _sampler_instance=None,
            _study=None,
            _asked={},
            _storage_ids={},
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_storage_ids": {}, **state})

    def _real_url(self) -> str:
        if "***" not in self.storage_url:
            return self.storage_url
        given = os.environ.get(STORAGE_ENV)
        if given and masked_storage(given) == self.storage_url:
            return given
        raise ArnasError(
            f"sweep: the study's storage {self.storage_url} needs its password, which no file "
            f"keeps: set {STORAGE_ENV} to the full URL and resume again"
        )

    @property
    def study(self) -> optuna.Study:
        """The study, reopened from the storage URL after a driver restart."""
        if self._study is None:
            storage = self._storage or open_storage(self._real_url())
            assert storage is not None  # check_only=False opens it
            self._storage = storage
            self._study = optuna.load_study(
                study_name=self.study_name,
                storage=storage,
                sampler=self._sampler_instance or self.sampler.build(),
            )
        return self._study

    def _storage_id(self, trial_id: str) -> int:
        """The storage's id of ``trial_id``'s Optuna trial (Optuna's public storage API),
        looked up once per trial."""
        if trial_id not in self._storage_ids:
            study = self.study
            assert self._storage is not None  # opened with the study
            study_id = self._storage.get_study_id_from_name(study.study_name)
            self._storage_ids[trial_id] = self._storage.get_trial_id_from_study_id_trial_number(
                study_id, self.numbers[trial_id]
            )
        return self._storage_ids[trial_id]

    def _trial(self, trial_id: str) -> optuna.Trial:
        """The live Optuna trial of ``trial_id`` (made again after a driver restart)."""
        if trial_id not in self._asked:
            self._asked[trial_id] = optuna.Trial(self.study, self._storage_id(trial_id))
        return self._asked[trial_id]

    def _finished(self, trial_id: str) -> bool:
        storage_id = self._storage_id(trial_id)  # opens the study and its storage
        assert self._storage is not None
        return self._storage.get_trial(storage_id).state.is_finished()

    # -- Tune's side --
    def suggest(self, trial_id: str) -> dict | None:
        trial = self.study.ask()
        trial.set_user_attr(RUN_ID_ATTR, self.run_id)
        trial.set_user_attr(TUNE_TRIAL_ATTR, trial_id)
        self.space(trial)
        self.numbers[trial_id] = trial.number
        self._asked[trial_id] = trial
        return dict(trial.params)

    def _set_constraints(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Tell the trial's constraint violations once (Optuna keeps the first values)."""
        if not self.constraints or trial_id in self.constrained:
            return
        trial = self._trial(trial_id)
        for metric, violation in zip(self.constraints, violations(self.constraints, result)):
            trial.set_constraint(metric, violation)
        self.constrained.add(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # At the last epoch: a sweep that ends on its budget never completes the trial.
        if result.get(SEARCH_FINISHED) and trial_id in self.numbers:
            if not self._finished(trial_id):
                self._set_constraints(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.numbers or self._finished(trial_id):
            return  # not ours, or settled before a driver restart: Optuna takes one tell
        number = self.numbers[trial_id]
        finished = bool(result and result.get(SEARCH_FINISHED))
        if not error:  # before tell: the sampler reads them as it settles
            self._set_constraints(trial_id, result or {})
        values = [float((result or {}).get(m, math.nan)) for m in self.objectives]
        if error or (finished and not all(math.isfinite(v) for v in values)):
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        elif not finished:
            self.study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(number, values)

    # -- Tune's experiment checkpoints: JSON, nothing secret --
    def save(self, checkpoint_path: str) -> None:
        state = {
            "format": STATE_FORMAT,
            "study_name": self.study_name,
            "storage": masked_storage(self.storage_url),
            "run_id": self.run_id,
            "trials": self.numbers,
            "constrained": sorted(self.constrained),
        }
        Path(checkpoint_path).write_text(json.dumps(state, indent=1))

    def restore(self, checkpoint_path: str) -> None:
        """Read :meth:`save`'s JSON (untrusted: checked field by field)."""
        where = f"--resume: the searcher state '{checkpoint_path}'"
        try:
            state = json.loads(Path(checkpoint_path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ArnasError(f"{where} cannot be read ({error}); start a new --out") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ArnasError(f"{where} is not in the format {STATE_FORMAT}; start a new --out")
        if (state.get("study_name"), state.get("run_id")) != (self.study_name, self.run_id):
            raise ArnasError(f"{where} belongs to another study or run; start a new --out")
        trials, constrained = state.get("trials"), state.get("constrained")
        if not (
            isinstance(trials, dict)
            and all(isinstance(k, str) and type(v) is int for k, v in trials.items())
            and isinstance(constrained, list)
            and all(isinstance(k, str) for k in constrained)
        ):
            raise ArnasError(f"{where} has malformed trials; start a new --out")
        self.numbers = dict(trials)
        self.constrained = set(constrained)
