"""Ownership of a sweep's run directory: one driver at a time, a stable run id,
and a resume that refuses a changed config.

``OUT/run.json`` holds the run id (recorded on every Optuna trial this run asks
for) and the config the run started with (storage password masked);
``OUT/.lock`` is held by the live driver (``filelock``), so a second driver on
the same directory stops with a one-line error instead of racing the first.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from filelock import Timeout

from arnas_common.dotted import diff_configs
from arnas_common.errors import ArnasError
from arnas_common.io import atomic_write_text
from arnas_common.io import check_name
from arnas_common.io import remove_orphan_temporaries
from arnas_ray.search.run_config import RUNTIME_ONLY_KEYS
from arnas_ray.sweep.config import SweepConfig
from arnas_ray.sweep.trial_storage import join_storage

__all__ = [
    "EXPERIMENT",
    "RUN_FILE",
    "SWEEP_RUNTIME_KEYS",
    "changed_keys",
    "claim",
    "experiment_location",
]

EXPERIMENT = "tune"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: Sweep keys a resume may change: they do not alter what the trials compute.
SWEEP_RUNTIME_KEYS = ("out", "report", "max_failures", "trial_timeout_s")


def changed_keys(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ, runtime-only keys (the sweep's and the run's) excepted."""
    ignored = (*SWEEP_RUNTIME_KEYS, *(f"fixed.{k}" for k in RUNTIME_ONLY_KEYS))
    return diff_configs(stored, requested, ignore=ignored)


def _with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config with the defaults of keys added since it was written, so a resume
    compares what the run computes, not which keys its version knew."""
    try:
        return SweepConfig.from_dict(stored).to_dict(masked=True)
    except ArnasError:  # not valid under today's rules: compare it as written
        return stored


def experiment_location(out: Path, config: SweepConfig, run_id: str) -> tuple[str, str]:
    """Tune's ``storage_path`` for this run and its experiment's path: the run directory,
    or ``<trial_storage>/<run id>`` (each run its own prefix of a shared bucket)."""
    if config.trial_storage is None:
        return str(out), str(out / EXPERIMENT)
    root = join_storage(config.trial_storage, run_id)
    return root, join_storage(root, EXPERIMENT)


def _stored_run_id(out: Path) -> str | None:
    """The run id ``run.json`` holds (untrusted: a safe name), or ``None``."""
    try:
        run_id = json.loads((out / RUN_FILE).read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return check_name(run_id, "run id", str(out / RUN_FILE)) if run_id is not None else None


def _holds_sweep(out: Path, config: SweepConfig) -> bool:
    from ray import tune

    if config.trial_storage is None:
        experiment = out / EXPERIMENT
        return experiment.exists() and tune.Tuner.can_restore(str(experiment))
    run_id = _stored_run_id(out)
    return run_id is not None and tune.Tuner.can_restore(
        experiment_location(out, config, run_id)[1]
    )


def check_experiment_files(out: Path) -> None:
    """Refuse, within seconds, a Tune experiment whose state files a full disk or a kill cut
    short: restoring one makes Ray Tune log an unpickling error and then wait for minutes.

    Pickles must end with the STOP opcode (``.``); the newest JSON states must parse; a
    searcher state pickled by an earlier arnas-ray is refused with what to do.

    Raises:
        ArnasError: a damaged file, named, with what to do.
    """
    experiment = out / EXPERIMENT
    legacy = sorted(experiment.glob("searcher-state-*.pkl"))
    if legacy and not list(experiment.glob("searcher-state-*.json")):
        raise ArnasError(
            f"--resume: '{out}' was made by an earlier arnas-ray whose searcher state "
            f"('{legacy[-1].name}') is a pickle this version does not read; its finished "
            "trials stay in the study: start a new --out with the same storage and study_name "
            "(or resume with the version that made it)"
        )
    for path in sorted(experiment.glob("*.pkl")):
        with contextlib.suppress(OSError):
            size = path.stat().st_size
            with path.open("rb") as handle:
                handle.seek(max(size - 1, 0))
                last = handle.read(1)
            if size == 0 or last != b".":
                raise ArnasError(
                    f"--resume: '{path}' is cut short (a full disk or a kill while Ray Tune wrote "
                    "it), so the sweep cannot be resumed; its finished trials stay in the study: "
                    "start a new --out with the same storage and study_name"
                )
    states = sorted(experiment.glob("experiment_state-*.json"))
    for searcher_state in sorted(experiment.glob("searcher-state-*.json"))[-1:]:
        try:
            json.loads(searcher_state.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise ArnasError(
                f"--resume: '{searcher_state}' is not valid JSON (cut short?); the sweep "
                "cannot be resumed; its finished trials stay in the study: start a new --out "
                "with the same storage and study_name"
            ) from None
    if states:
        try:
            json.loads(states[-1].read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise ArnasError(
                f"--resume: '{states[-1]}' is not valid JSON (cut short?); delete it to resume "
                "from the previous state, or start a new --out"
            ) from None


def _check_state(out: Path, resume: bool, config: SweepConfig) -> None:
    holds = _holds_sweep(out, config)
    if resume and not holds:
        raise ArnasError(f"--resume: no sweep to continue in '{out}'; run without --resume")
    if resume and config.trial_storage is None:  # Tune's state files are local: check them
        check_experiment_files(out)
    if not resume and holds:
        raise ArnasError(
            f"'{out}' already holds a sweep; add --resume to continue it or choose another out"
        )


def _prepare(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ArnasError(
            f"--out '{out}' is not writable ({error.strerror}); choose another directory"
        ) from None


@contextlib.contextmanager
def claim(out: Path, config: SweepConfig, *, resume: bool) -> Iterator[str]:
    """Hold ``out`` for one driver; yields the run id.

    Raises:
        ArnasError: ``out`` is not a writable directory, another driver holds it,
            it already holds a sweep (without ``resume``) or none (with it), or
            ``resume`` asks for a different config.
    """
    if out.exists() and not out.is_dir():
        raise ArnasError(f"--out '{out}' is a file; choose a directory")
    _check_state(out, resume, config)  # before anything is created; again under the lock
    _prepare(out)
    lock = FileLock(out / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ArnasError(
            f"another sweep driver is running in '{out}' (it holds {out / LOCK_FILE}); "
            "wait for it to finish or choose another --out"
        ) from None
    try:
        _check_state(out, resume, config)
        requested = config.to_dict(masked=True)
        run_file = out / RUN_FILE
        if resume and run_file.is_file():
            stored = json.loads(run_file.read_text())
            changed = changed_keys(_with_defaults(stored["config"]), requested)
            if changed:
                raise ArnasError(
                    f"--resume: the config differs from the one '{out}' started with in: "
                    f"{', '.join(changed)}; "
                    "resume with the same config (see its sweep.yaml) or start a new run directory"
                )
            run_id = str(stored["run_id"])
        else:
            run_id = uuid.uuid4().hex[:12]
            atomic_write_text(
                run_file, json.dumps({"run_id": run_id, "config": requested}, indent=2) + "\n"
            )
            atomic_write_text(out / "sweep.yaml", yaml.safe_dump(requested, sort_keys=False))
        remove_orphan_temporaries(out)
        yield run_id
    finally:
        lock.release()
