"""The layout's rules: imports flow one way, and the Ray line is a folder.

search_spaces (torch only) <- arnas_ray.search (the Ray-free engine) and
arnas_ray.{results, pareto, cli} <- arnas_ray.sweep (the only package on the
search side that imports Ray) ; analysis reads arnas_ray.results and never
imports arnas_ray.sweep (its one Ray use, analysis.final_training, is lazy).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("search_spaces", "arnas_ray", "analysis")
RAY_PACKAGE = "arnas_ray/sweep/"
# analysis.train --sweep's launcher; analysis.train imports it inside main() only.
LAZY_RAY_MODULES = {"analysis/final_training.py"}
MAX_LINES = 300
LONG_REASON = "Longer than 300 lines"


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module", ["search_spaces", "arnas_ray.search", "arnas_ray.results", "arnas_ray.cli", "analysis.train",
               "analysis.report", "analysis.score"],
)  # fmt: skip
def test_engine_and_analysis_do_not_import_ray(module: str) -> None:
    loaded = _loaded(module)
    assert "ray" not in loaded and "arnas_ray.sweep" not in loaded
    if module.startswith(("search_spaces", "arnas_ray.search")):  # optuna: sweep and fronts only
        assert "optuna" not in loaded


def test_search_spaces_imports_no_project_package_above_it() -> None:
    loaded = _loaded("search_spaces")
    assert not {"arnas_ray", "analysis", "pandas", "plotly", "sklearn"} & loaded


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_only_the_sweep_package_imports_ray() -> None:
    offenders = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        if rel.startswith(RAY_PACKAGE):
            continue
        if re.search(r"^(import ray|from ray)", text, re.M):
            offenders.append(rel)
        if re.search(r"^\s+(import ray|from ray)", text, re.M) and rel not in LAZY_RAY_MODULES:
            offenders.append(rel)
    assert offenders == []


def test_lower_layers_do_not_import_upper_ones() -> None:
    rules = {"search_spaces": r"arnas_ray|analysis", "arnas_ray/search": r"arnas_ray\.sweep|analysis",
             "arnas_ray/sweep": r"analysis", "analysis": r"arnas_ray\.sweep"}  # fmt: skip
    offenders = []
    for folder, forbidden in rules.items():
        for path in (ROOT / folder).rglob("*.py"):
            if re.search(rf"^\s*(from|import) ({forbidden})\b", path.read_text(), re.M):
                offenders.append(path.relative_to(ROOT).as_posix())
    for name in ("results.py", "pareto.py", "cli.py"):
        if re.search(r"^\s*(from|import) (arnas_ray\.sweep|analysis|ray)\b", (ROOT / "arnas_ray" / name).read_text(), re.M):
            offenders.append(f"arnas_ray/{name}")
    assert offenders == []


def test_long_files_state_why_at_their_top() -> None:
    unexplained = []
    for path in _sources():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES and LONG_REASON not in "\n".join(lines[:40]):
            unexplained.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert unexplained == []


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
