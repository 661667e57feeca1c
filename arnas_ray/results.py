"""The run directory of a sweep, as one typed, versioned record (Ray-free).

The sweep writes a :class:`SweepResult`; ``analysis.report``, ``analysis.train
--sweep`` and ``analysis.score`` read it back. Nothing downstream parses
Ray Tune's files or column-name prefixes. Files (all written atomically):

* ``result.json`` — the record itself (schema :data:`SCHEMA_VERSION`): the
  objectives with their directions, and per trial its status, its *full* run
  config (the sweep's ``fixed`` keys plus the sampled ones), which keys were
  sampled, its final metrics, per-epoch history and genotype;
* ``trials.parquet`` — the same trials as a flat table for pandas users
  (:meth:`SweepResult.frame`);
* ``pareto.json`` — the front: the finished trials no other finished trial
  dominates over *all* objectives (:mod:`arnas_ray.pareto`).

Run directories written before ``result.json`` existed (``trials.parquet``
with ``hp_*`` columns, ``sweep.yaml``) are read through :func:`_read_legacy`,
as Optuna replays old storage formats.

Longer than 400 lines because the record, its JSON round trip, its flat table and
the reader of the legacy format are one contract and change together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from arnas_common import metrics as M
from arnas_common.dotted import get_dotted
from arnas_common.errors import ArnasError
from arnas_common.io import atomic_write
from arnas_common.io import atomic_write_text
from arnas_common.io import check_name
from arnas_common.io import read_json
from arnas_common.io import read_text
from arnas_ray.pareto import non_dominated
from search_spaces.genotype import Genotype
from search_spaces.spec import NetworkSpec

__all__ = [
    "FIDELITY",
    "SCHEMA_VERSION",
    "SweepResult",
    "TrialRecord",
    "TrialStatus",
    "parse_alphas",
]

SCHEMA_VERSION = 2
RESULT_FILE = "result.json"
TRIALS_FILE = "trials.parquet"
PARETO_FILE = "pareto.json"
CONFIG_FILE = "sweep.yaml"
#: What the front is drawn from.
FIDELITY = "finished searches only (trials stopped early or errored are excluded)"


class TrialStatus(StrEnum):
    """How a sweep trial ended."""

    FINISHED = "FINISHED"  # ran every epoch of its search
    STOPPED_EARLY = "STOPPED_EARLY"  # stopped by the scheduler or its time limit
    ERROR = "ERROR"  # raised, after its retries


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a sweep (one ARNAS search)."""

    trial_id: str
    status: TrialStatus
    config: Mapping[
        str, Any
    ]  # full run config: the sweep's fixed keys + the sampled ones (nested)
    sampled: tuple[str, ...] = ()  # the config keys the sampler chose (dotted for nested ones)
    metrics: Mapping[str, float] = field(default_factory=dict)  # final epoch's metrics
    genotype: Genotype | None = None
    number: int | None = None  # Optuna trial number
    optuna_state: str | None = None
    epochs_done: int = 0
    time_total_s: float = float("nan")
    error: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()  # per-epoch metrics (M.HISTORY_KEYS)
    #: final softmax(alpha) of each cell type in use: a row of op weights per edge
    #: (columns in the order of the space's primitives)
    alphas: Mapping[str, tuple[tuple[float, ...], ...]] = field(default_factory=dict)
    #: the derived network (genotype + skeleton + placement + data facts) at the size
    #: ``params_m`` counts; ``None`` in run directories from before it was recorded
    network: NetworkSpec | None = None
    #: whether the trial meets the sweep's ``constraints`` (``None``: the sweep has none)
    feasible: bool | None = None

    def network_spec(self) -> NetworkSpec | None:
        """The trial's derived network: the recorded spec, else (older run directories)
        rebuilt from its run config and genotype; ``None`` without a genotype."""
        if self.network is not None:
            return self.network
        if self.genotype is None:
            return None
        from arnas_ray.search.config import space_for
        from arnas_ray.search.run_config import RunConfig

        run = RunConfig.from_flat(self.config, where=f"trial {self.trial_id} config")
        search = run.search
        return NetworkSpec.from_space(self.genotype, space_for(search, run.space)).resized(
            layers=search.params_layers, init_channels=search.params_channels
        )

    def value(self, metric: str) -> float:
        """A final metric (NaN when missing)."""
        value = self.metrics.get(metric)
        return float("nan") if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "number": self.number,
            "status": str(self.status),
            "optuna_state": self.optuna_state,
            "epochs_done": self.epochs_done,
            "time_total_s": _finite_or_none(self.time_total_s),
            "error": self.error,
            "config": dict(self.config),
            "sampled": list(self.sampled),
            "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
            "genotype": None if self.genotype is None else self.genotype.to_dict(),
            "history": [{k: _finite_or_none(v) for k, v in row.items()} for row in self.history],
            "alphas": {cell: [list(row) for row in rows] for cell, rows in self.alphas.items()},
            "network": None if self.network is None else self.network.to_dict(),
            "feasible": self.feasible,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        genotype = data.get("genotype")
        return cls(
            trial_id=str(data["trial_id"]),
            status=TrialStatus(data["status"]),
            config=dict(data.get("config") or {}),
            sampled=tuple(data.get("sampled") or ()),
            metrics={
                k: (float("nan") if v is None else v)
                for k, v in (data.get("metrics") or {}).items()
            },
            genotype=None if genotype is None else Genotype.from_dict(genotype),
            number=data.get("number"),
            optuna_state=data.get("optuna_state"),
            epochs_done=int(data.get("epochs_done") or 0),
            time_total_s=float("nan")
            if data.get("time_total_s") is None
            else float(data["time_total_s"]),
            error=data.get("error"),
            history=tuple(data.get("history") or ()),
            alphas=parse_alphas(data.get("alphas")),
            network=None
            if data.get("network") is None
            else NetworkSpec.from_dict(data["network"]),
            feasible=None if data.get("feasible") is None else bool(data["feasible"]),
        )


@dataclass(frozen=True)
class SweepResult:
    """Everything a sweep hands to the analysis."""

    name: str
    objectives: Mapping[str, str]  # metric -> "maximize" | "minimize"
    trials: tuple[TrialRecord, ...]
    fidelity: str = FIDELITY
    run_id: str | None = None  # the sweep run that wrote it (several may share one study)
    schema: int = SCHEMA_VERSION
    #: the hypervolume reference per objective, declared or the objectives' fixed bounds
    #: (``None`` in run directories from before it was recorded)
    reference_point: Mapping[str, float] | None = None
    #: metric -> {"max": X} or {"min": X}: the sweep's feasibility limits
    constraints: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for metric, direction in self.objectives.items():
            if direction not in ("maximize", "minimize"):
                raise ArnasError(
                    f"objective '{metric}': direction must be maximize or minimize, got "
                    f"{direction!r}"
                )

    @property
    def sampled_keys(self) -> list[str]:
        """Every key any trial sampled, in first-seen order."""
        return list(dict.fromkeys(key for trial in self.trials for key in trial.sampled))

    def finished(self) -> list[TrialRecord]:
        """Trials that ran their whole search and have every objective and a genotype."""
        return [
            t
            for t in self.trials
            if t.status is TrialStatus.FINISHED
            and t.genotype is not None
            and all(math.isfinite(t.value(m)) for m in self.objectives)
        ]

    def objective_values(self, trials: Sequence[TrialRecord]) -> np.ndarray:
        return np.array(
            [[t.value(m) for m in self.objectives] for t in trials], dtype=float
        ).reshape(len(trials), len(self.objectives))

    def front(self) -> list[TrialRecord]:
        """Finished, feasible trials no other finished, feasible trial dominates, over all
        objectives (infeasible trials stay in the record, never on the front)."""
        finished = [t for t in self.finished() if t.feasible is not False]
        if not finished:
            return []
        keep = non_dominated(self.objective_values(finished), list(self.objectives.values()))
        return [finished[i] for i in keep]

    def trial(self, trial_id: str) -> TrialRecord:
        for trial in self.trials:
            if trial.trial_id == trial_id:
                return trial
        raise KeyError(trial_id)

    def frame(self):
        """One row per trial: status columns, sampled keys, final metrics, genotype JSON."""
        import pandas as pd

        metric_keys = list(dict.fromkeys([*self.objectives, *M.TRIAL_METRICS]))
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {
                "trial_id": t.trial_id,
                "number": t.number,
                "status": str(t.status),
                "optuna_state": t.optuna_state,
                "epochs_done": t.epochs_done,
                "time_total_s": t.time_total_s,
                "error": t.error,
            }
            row.update(
                {
                    key: get_dotted(t.config, key) if key in t.sampled else None
                    for key in self.sampled_keys
                }
            )
            row.update({key: t.value(key) for key in metric_keys})
            row["feasible"] = t.feasible
            row[M.GENOTYPE] = None if t.genotype is None else t.genotype.to_json()
            rows.append(row)
        columns = [
            "trial_id",
            "number",
            "status",
            "optuna_state",
            "epochs_done",
            "time_total_s",
            "error",
            *self.sampled_keys,
            *metric_keys,
            "feasible",
            M.GENOTYPE,
        ]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "name": self.name,
            "run_id": self.run_id,
            "reference_point": None
            if self.reference_point is None
            else dict(self.reference_point),
            "constraints": {m: dict(limit) for m, limit in self.constraints.items()},
            "objectives": dict(self.objectives),
            "fidelity": self.fidelity,
            "trials": [t.to_dict() for t in self.trials],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = RESULT_FILE) -> SweepResult:
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise ArnasError(
                f"{where}: schema {schema!r} is not {SCHEMA_VERSION}; upgrade arnas-ray to read it"
            )
        try:
            trials = tuple(TrialRecord.from_dict(t) for t in data["trials"])
            for trial in trials:  # trial ids become folder names downstream
                check_name(trial.trial_id, "trial_id", where)
            return cls(
                name=str(data["name"]),
                objectives=dict(data["objectives"]),
                trials=trials,
                fidelity=str(data.get("fidelity", FIDELITY)),
                run_id=data.get("run_id"),
                reference_point=_reference(data.get("reference_point")),
                constraints=_constraints(data.get("constraints")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ArnasError(
                f"{where}: not a sweep result ({type(error).__name__}: {error})"
            ) from None

    def write(self, run_dir: str | Path) -> Path:
        """``result.json``, ``trials.parquet`` and ``pareto.json`` under ``run_dir``."""
        run_dir = Path(run_dir)
        frame = self.frame()
        atomic_write(
            run_dir / TRIALS_FILE,
            lambda handle: frame.to_parquet(handle, index=False),
            binary=True,
        )
        front = [
            {
                "trial_id": t.trial_id,
                "number": t.number,
                **{m: _finite_or_none(t.value(m)) for m in self.objectives},
                "config": dict(t.config),
                "sampled": list(t.sampled),
                "genotype": None if t.genotype is None else t.genotype.to_dict(),
            }
            for t in self.front()
        ]
        pareto = {
            "schema": SCHEMA_VERSION,
            "objectives": dict(self.objectives),
            "constraints": {m: dict(limit) for m, limit in self.constraints.items()},
            "fidelity": self.fidelity,
            "trials": front,
        }
        atomic_write_text(run_dir / PARETO_FILE, json.dumps(pareto, indent=2) + "\n")
        # result.json last: its presence marks a complete, consistent run directory.
        return atomic_write_text(
            run_dir / RESULT_FILE, json.dumps(self.to_dict(), indent=1) + "\n"
        )

    @classmethod
    def read(cls, run_dir: str | Path) -> SweepResult:
        """The result of the sweep in ``run_dir`` (any schema this version reads).

        Raises:
            ArnasError: no sweep result there, or an unreadable one.
        """
        run_dir = Path(run_dir)
        path = run_dir / RESULT_FILE
        if path.is_file():
            data = read_json(path, "sweep result")
            if not isinstance(data, dict):
                raise ArnasError(f"'{path}' is not a sweep result")
            return cls.from_dict(data, where=str(path))
        if (run_dir / TRIALS_FILE).is_file():
            return _read_legacy(run_dir)
        raise ArnasError(
            f"'{run_dir}' has no {RESULT_FILE}; is it the run directory of a finished sweep?"
        )


def _read_legacy(run_dir: Path) -> SweepResult:
    """Schema 1: ``trials.parquet`` (``hp_<key>`` columns) and ``sweep.yaml`` (fixed keys)."""
    import pandas as pd
    import yaml

    try:
        frame = pd.read_parquet(run_dir / TRIALS_FILE)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise ArnasError(
            f"'{run_dir / TRIALS_FILE}' cannot be read ({type(error).__name__}); "
            "rerun the sweep with --resume to rewrite it"
        ) from None
    sweep: dict[str, Any] = {}
    if (run_dir / CONFIG_FILE).is_file():
        try:
            sweep = yaml.safe_load(read_text(run_dir / CONFIG_FILE, "sweep config")) or {}
        except yaml.YAMLError as error:
            raise ArnasError(
                f"'{run_dir / CONFIG_FILE}' is not valid YAML ({error})".replace("\n", " ")
            ) from None
    objectives = dict(sweep.get("objectives") or M.DEFAULT_OBJECTIVES)
    missing = [m for m in objectives if m not in frame]
    if missing:
        raise ArnasError(
            f"'{run_dir / TRIALS_FILE}' has no column for objective(s) {', '.join(missing)}"
        )
    fixed = dict(sweep.get("fixed") or {})
    hp_columns = [c for c in frame.columns if c.startswith("hp_")]
    metric_columns = [c for c in frame.columns if c in (*objectives, *M.TRIAL_METRICS)]
    trials = []
    for row in frame.to_dict(orient="records"):
        sampled = {c[3:]: row[c] for c in hp_columns if _present(row[c])}
        text = row.get(M.GENOTYPE)
        trials.append(
            TrialRecord(
                trial_id=str(row["trial_id"]),
                status=TrialStatus(row.get("status", "FINISHED")),
                config={**fixed, **sampled},
                sampled=tuple(sampled),
                metrics={c: float(row[c]) for c in metric_columns if _present(row[c])},
                genotype=Genotype.from_json(text) if isinstance(text, str) else None,
                number=None if not _present(row.get("optuna_trial")) else int(row["optuna_trial"]),
                optuna_state=row.get("optuna_state"),
                epochs_done=int(row.get("epochs_done") or 0),
                time_total_s=float(row.get("time_total_s", float("nan"))),
                error=row["error"] if isinstance(row.get("error"), str) else None,
            )
        )
    for trial in trials:
        check_name(trial.trial_id, "trial_id", str(run_dir / TRIALS_FILE))
    return SweepResult(
        name=str(sweep.get("name", run_dir.name)),
        objectives=objectives,
        trials=tuple(trials),
        schema=SCHEMA_VERSION,
    )


def _reference(data: Any) -> dict[str, float] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("reference_point must map objectives to numbers")
    return {str(k): float(v) for k, v in data.items()}


def _constraints(data: Any) -> dict[str, dict[str, float]]:
    if not data:
        return {}
    if not isinstance(data, Mapping) or not all(
        isinstance(v, Mapping) and len(v) == 1 and set(v) <= {"max", "min"} for v in data.values()
    ):
        raise ValueError("constraints must map metrics to {max: X} or {min: X}")
    return {str(k): {str(side): float(x) for side, x in v.items()} for k, v in data.items()}


def parse_alphas(data: Any) -> dict[str, tuple[tuple[float, ...], ...]]:
    """A trial's final alpha weights as read from a file: a mapping of cell type to rows of floats.

    Raises:
        ValueError: any other shape (the reader turns it into one error line).
    """
    if data is None:
        return {}
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, Mapping):
        raise ValueError("alphas must map cell types to rows of operation weights")
    out = {}
    for cell, rows in data.items():
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ValueError(f"alphas.{cell} must be a list of rows of operation weights")
        out[str(cell)] = tuple(tuple(float(v) for v in row) for row in rows)
    return out


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
