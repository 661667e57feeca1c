"""Scores in RobustBench's layout, with its model card (robustbench/model_info/*.json).

A scored network's record: what RobustBench users know (``clean_acc``,
``autoattack_acc``, the budget written as ``8/255``), the card's fields filled from
the run where known, and AutoAttack's own sanity-check flags.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from arnas_common import metrics as M
from arnas_common.io import atomic_write_text

__all__ = ["ROBUSTBENCH_FIELDS", "eps_text", "robustbench_record", "write_record"]


#: The fields of a RobustBench model card (robustbench/model_info/*.json).
ROBUSTBENCH_FIELDS = (
    "link",
    "name",
    "authors",
    "additional_data",
    "number_forward_passes",
    "dataset",
    "venue",
    "architecture",
    "eps",
    "clean_acc",
    "reported",
    "autoattack_acc",
    "footnote",
)


def eps_text(eps: float) -> str:
    """RobustBench's way of writing a budget: ``8/255`` when it is a whole number of
    pixel levels, else the number."""
    levels = eps * 255
    return (
        f"{round(levels)}/255"
        if abs(levels - round(levels)) < 1e-6 and levels >= 1
        else f"{eps:g}"
    )


def robustbench_record(
    scores: pd.DataFrame,
    *,
    model_name: str,
    dataset: str,
    autoattack_version: str = "standard",
    card: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Scores in the layout RobustBench users know (``clean_acc``, ``autoattack_acc``, ...),
    with a RobustBench model card (``robustbench``: its fields, filled from the run where
    known: ``card`` gives link, authors, venue, architecture, footnote; unknown ones are
    empty strings) and AutoAttack's sanity-check flags (``autoattack_checks``)."""
    by_metric = dict(zip(scores["metric"], scores["accuracy"]))
    first = scores.iloc[0]
    percent = {
        m: ("" if by_metric.get(m) is None else f"{100 * by_metric[m]:.2f}") for m in by_metric
    }
    robustbench: dict[str, Any] = {field_: "" for field_ in ROBUSTBENCH_FIELDS}
    robustbench.update(
        name=model_name,
        dataset=dataset,
        additional_data=False,
        number_forward_passes=1,
        eps=eps_text(float(first["eps"])),
        clean_acc=percent.get(M.CLEAN_ACC, ""),
        autoattack_acc=percent.get(M.AUTOATTACK_ACC, ""),
        reported="",
    )
    robustbench.update({k: v for k, v in (card or {}).items() if k in ROBUSTBENCH_FIELDS})
    return {
        "name": model_name,
        "dataset": dataset,
        M.CLEAN_ACC: by_metric.get(M.CLEAN_ACC),
        M.AUTOATTACK_ACC: by_metric.get(M.AUTOATTACK_ACC),
        "additional_data": False,
        "eps": float(first["eps"]),
        "norm": first["norm"],
        "n_examples": int(first["n_examples"]),
        "autoattack_version": autoattack_version,
        "attacks": {k: v for k, v in by_metric.items()},
        "autoattack_checks": dict(scores.attrs.get("autoattack_checks") or {}),
        "robustbench": robustbench,
        "versions": {"pyautoattack": version("pyautoattack"), "torch": torch.__version__},
    }


def write_record(record: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(path, json.dumps(record, indent=2) + "\n")
