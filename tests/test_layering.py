"""Imports flow one way: search_spaces <- arnas_ray (engine Ray-free) <- analysis."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("search_spaces", "arnas_ray", "analysis")
RAY_MODULES = {"arnas_ray/trainable.py", "arnas_ray/sweep.py"}
# analysis.train's optional `--sweep` launcher imports Ray lazily inside one function.
LAZY_RAY_MODULES = {"analysis/train.py"}


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module", ["search_spaces", "arnas_ray.data", "arnas_ray.search", "analysis.train", "analysis.report"]
)
def test_engine_does_not_import_ray_or_optuna(module: str) -> None:
    loaded = _loaded(module)
    assert "ray" not in loaded
    if not module.startswith("analysis"):  # analysis may use Optuna's Pareto mathematics
        assert "optuna" not in loaded


def test_search_spaces_imports_no_project_package_above_it() -> None:
    loaded = _loaded("search_spaces")
    assert not {"arnas_ray", "analysis", "pandas", "plotly", "sklearn"} & loaded


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_only_trainable_and_sweep_import_ray() -> None:
    offenders = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        if re.search(r"^(import ray|from ray)", text, re.M) and rel not in RAY_MODULES:
            offenders.append(rel)
        if re.search(r"^\s+(import ray|from ray)", text, re.M) and rel not in RAY_MODULES | LAZY_RAY_MODULES:
            offenders.append(rel)
    assert offenders == []


def test_search_spaces_does_not_import_upper_packages() -> None:
    for path in (ROOT / "search_spaces").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (arnas_ray|analysis)", path.read_text(), re.M), path


def test_source_hygiene() -> None:
    """No .cuda(), eval(, pickle loads, or torch.load without weights_only."""
    bad = []
    for path in _sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"\.cuda\(|(?<![\w.`])eval\(|pickle\.load", code) or (
                "torch.load(" in code and "weights_only=True" not in code
            ):
                bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert bad == []
