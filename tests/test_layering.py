"""The layout's rules: imports flow one way, and the Ray line is a folder.

arnas_common (shared plumbing: imports no project code) <- search_spaces (torch
only) <- arnas_ray.search (the Ray-free engine) and arnas_ray.{results, pareto}
<- arnas_ray.sweep (the only package on the search side that imports Ray);
analysis reads arnas_ray.results and never imports arnas_ray.sweep (its one Ray
use, analysis.final_training, is lazy). No two project modules import each
other, not even lazily.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("arnas_common", "search_spaces", "arnas_ray", "analysis")
#: Modules kept for one release at their old path, re-exporting arnas_common.
SHIMS = {
    "search_spaces/errors.py",
    "search_spaces/config_base.py",
    "search_spaces/atomic.py",
    "arnas_ray/cli.py",
    "arnas_ray/search/metrics.py",
}
RAY_PACKAGE = "arnas_ray/sweep/"
# analysis.train --sweep's launcher; analysis.train imports it inside main() only.
LAZY_RAY_MODULES = {"analysis/final_training.py"}
MAX_LINES = 400  # formatted by ruff (300 before the formatter ran)
LONG_REASON = "Longer than 400 lines"


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module",
    [
        "arnas_common.cli",
        "search_spaces",
        "arnas_ray.search",
        "arnas_ray.results",
        "analysis.train",
        "analysis.report",
        "analysis.score",
    ],
)
def test_engine_and_analysis_do_not_import_ray(module: str) -> None:
    loaded = _loaded(module)
    assert "ray" not in loaded and "arnas_ray.sweep" not in loaded
    if module.startswith(
        ("arnas_common", "search_spaces", "arnas_ray.search")
    ):  # optuna: sweep and fronts only
        assert "optuna" not in loaded


def test_search_spaces_imports_no_project_package_above_it() -> None:
    loaded = _loaded("search_spaces")
    assert not {"arnas_ray", "analysis", "pandas", "plotly", "sklearn"} & loaded


@pytest.mark.parametrize(
    "module",
    [
        "arnas_common.cli",
        "arnas_common.io",
        "arnas_common.config_base",
        "arnas_common.device",
        "arnas_common.metrics",
        "arnas_common.errors",
    ],
)
def test_the_bottom_package_imports_no_project_code(module: str) -> None:
    loaded = _loaded(module)
    assert not {"search_spaces", "arnas_ray", "analysis"} & loaded
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    assert not re.search(r"^\s*(from|import) (search_spaces|arnas_ray|analysis)\b", source, re.M)


def _module_imports(path: Path) -> set[str]:
    """Project modules ``path`` imports, at the top or lazily inside a function."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_import_circle_between_project_modules() -> None:
    """Every import edge between project modules, lazy ones included, forms no cycle."""
    modules = {}
    for path in _sources():
        rel = path.relative_to(ROOT).with_suffix("").as_posix()
        name = rel.removesuffix("/__init__").replace("/", ".")
        modules[name] = path
    graph = {
        name: {m for m in _module_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own submodules is how packages export: not a circle.
    for name in graph:
        graph[name] = {
            m
            for m in graph[name]
            if not (modules[name].name == "__init__.py" and m.startswith(name + "."))
        }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(
                    stack[stack.index(nxt) :] + [node, nxt] if nxt in stack else [node, nxt]
                )
                return True
            if nxt not in state and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for name in sorted(graph):
        if name not in state and visit(name, []):
            break
    assert cycle == [], " -> ".join(cycle)


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
    rules = {
        "arnas_common": r"search_spaces|arnas_ray|analysis",
        "search_spaces": r"arnas_ray|analysis",
        "arnas_ray/search": r"arnas_ray\.sweep|analysis",
        "arnas_ray/sweep": r"analysis",
        "analysis": r"arnas_ray\.sweep",
    }
    offenders = []
    for folder, forbidden in rules.items():
        for path in (ROOT / folder).rglob("*.py"):
            if path.relative_to(ROOT).as_posix() in SHIMS:
                continue
            if re.search(rf"^\s*(from|import) ({forbidden})\b", path.read_text(), re.M):
                offenders.append(path.relative_to(ROOT).as_posix())
    for name in ("results.py", "pareto.py"):
        if re.search(
            r"^\s*(from|import) (arnas_ray\.sweep|analysis|ray)\b",
            (ROOT / "arnas_ray" / name).read_text(),
            re.M,
        ):
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
