"""Experiment tracking by name: Ray Tune's own logger callbacks, chosen in the sweep file.

``callbacks: [tensorboard, mlflow]`` in a sweep config turns on Tune's
``TBXLoggerCallback`` and ``MLflowLoggerCallback``; ``callback_options`` passes each its
options, checked here before Ray starts (this module imports Ray only to build them).
``csv`` and ``json`` are always on: the sweep reads its trials' results from them.
Tracking files stay inside the run directory unless an option points elsewhere: MLflow's
SQLite store ``RUN_DIR/mlflow.db`` (MLflow 3 refuses its file store unless
``MLFLOW_ALLOW_FILE_STORE`` is set) with artifacts in ``RUN_DIR/mlartifacts``, W&B's
offline runs in ``RUN_DIR/wandb``. Credentials
never go into a sweep file (it is copied into the run directory): W&B reads
``WANDB_API_KEY``, MLflow ``MLFLOW_TRACKING_TOKEN`` from the environment.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from arnas_common.errors import ConfigError
from arnas_common.errors import near_miss

__all__ = ["CALLBACKS", "ALWAYS_ON", "check_callbacks", "make_callbacks", "tracking_env"]


@dataclass(frozen=True)
class CallbackKind:
    """One tracking callback: where Ray keeps it, which options a sweep file may set."""

    module: str
    cls: str
    options: tuple[str, ...] = ()
    needs: str | None = None  # the package it imports (an optional extra)
    extra: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)


CALLBACKS: dict[str, CallbackKind] = {
    "csv": CallbackKind("ray.tune.logger", "CSVLoggerCallback"),
    "json": CallbackKind("ray.tune.logger", "JsonLoggerCallback"),
    "tensorboard": CallbackKind("ray.tune.logger", "TBXLoggerCallback", needs="tensorboardX"),
    "mlflow": CallbackKind(
        "ray.air.integrations.mlflow",
        "MLflowLoggerCallback",
        options=(
            "tracking_uri",
            "experiment_name",
            "tags",
            "save_artifact",
            "log_params_on_trial_end",
        ),
        needs="mlflow",
        extra="tracking",
    ),
    "wandb": CallbackKind(
        "ray.air.integrations.wandb",
        "WandbLoggerCallback",
        options=("project", "group", "entity", "mode", "tags", "excludes", "log_config"),
        needs="wandb",
        extra="tracking",
        defaults={"mode": "offline"},  # nothing leaves the machine unless asked
    ),
}
#: Written for every trial whatever ``callbacks`` says: the sweep's results come from them.
ALWAYS_ON = ("csv", "json")
_WANDB_MODES = ("offline", "online", "disabled")


def check_callbacks(names: tuple[str, ...], options: Mapping[str, Any]) -> None:
    """Every name known, its package installed, every option one it takes.

    Raises:
        ConfigError: one line per problem, naming the key and how to fix it.
    """
    problems = []
    for name in names:
        kind = CALLBACKS.get(name)
        if kind is None:
            problems.append(
                f"sweep: callbacks: unknown callback '{name}'{near_miss(name, list(CALLBACKS))}; "
                f"use any of {', '.join(CALLBACKS)}"
            )
        elif kind.needs and importlib.util.find_spec(kind.needs) is None:
            install = (
                f"pip install -e '.[{kind.extra}]'" if kind.extra else f"pip install {kind.needs}"
            )
            problems.append(f"sweep: callbacks: {name} needs {kind.needs}: {install}")
    for name, given in options.items():
        kind = CALLBACKS.get(name)
        if name not in names:
            problems.append(
                f"sweep: callback_options.{name}: '{name}' is not in callbacks; add it there "
                "or drop its options"
            )
            continue
        if not isinstance(given, Mapping):
            problems.append(f"sweep: callback_options.{name}: expected a mapping of options")
            continue
        allowed = kind.options if kind else ()
        for key in given:
            if key not in allowed:
                secret = key in ("api_key", "api_key_file", "tracking_token")
                why = (
                    "credentials never go into a sweep file: set WANDB_API_KEY or "
                    "MLFLOW_TRACKING_TOKEN in the environment"
                    if secret
                    else f"it takes {', '.join(allowed) or 'no options'}"
                    f"{near_miss(str(key), list(allowed))}"
                )
                problems.append(f"sweep: callback_options.{name}.{key}: not allowed; {why}")
        mode = given.get("mode")
        if name == "wandb" and mode is not None and mode not in _WANDB_MODES:
            problems.append(
                f"sweep: callback_options.wandb.mode: {mode!r}; use one of "
                f"{', '.join(_WANDB_MODES)}"
            )
        elif name == "wandb" and mode == "online" and not os.environ.get("WANDB_API_KEY"):
            problems.append(
                "sweep: callback_options.wandb.mode: online needs WANDB_API_KEY in the "
                "environment (or mode: offline, and `wandb sync RUN_DIR/wandb` later)"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def make_callbacks(
    names: tuple[str, ...], options: Mapping[str, Mapping[str, Any]], out: Path, sweep_name: str
) -> list[Any]:
    """Tune callbacks for ``names`` (plus :data:`ALWAYS_ON`), with the run directory's defaults:
    MLflow's store ``sqlite:///RUN_DIR/mlflow.db`` and experiment ``sweep_name``, W&B's project
    ``sweep_name`` in offline mode under ``RUN_DIR/wandb``."""
    out = Path(out).resolve()
    built = []
    for name in dict.fromkeys((*ALWAYS_ON, *names)):
        kind = CALLBACKS[name]
        kwargs: dict[str, Any] = {**kind.defaults, **dict(options.get(name) or {})}
        if name == "mlflow":
            kwargs.setdefault("experiment_name", sweep_name)
            if "tracking_uri" not in kwargs:
                kwargs["tracking_uri"] = f"sqlite:///{out / 'mlflow.db'}"
                _mlflow_experiment(kwargs["tracking_uri"], kwargs["experiment_name"], out)
        elif name == "wandb":
            kwargs.setdefault("project", sweep_name)
            if kwargs["mode"] != "online":  # Ray's callback reads the mode from here only
                os.environ["WANDB_MODE"] = kwargs["mode"]
            (out / "wandb").mkdir(exist_ok=True)
            kwargs.setdefault("dir", str(out / "wandb"))
        built.append(getattr(importlib.import_module(kind.module), kind.cls)(**kwargs))
    return built


def _mlflow_experiment(tracking_uri: str, name: str, out: Path) -> None:
    """The experiment in the run directory's store, its artifacts beside it (MLflow's
    default artifact root is the working directory's ``mlruns``)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=(out / "mlartifacts").as_uri())


def tracking_env(names: tuple[str, ...], out: Path) -> dict[str, str]:
    """Environment for the driver and Ray's workers that keeps W&B's cache, config and
    staging files in ``RUN_DIR/wandb`` (it writes them under ``~/.cache`` and ``~/.config``
    otherwise)."""
    if "wandb" not in names:
        return {}
    root = Path(out).resolve() / "wandb"
    return {f"WANDB_{kind.upper()}_DIR": str(root / kind) for kind in ("cache", "config", "data")}
