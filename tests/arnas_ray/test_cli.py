"""Command-line plumbing: thread counts."""

from __future__ import annotations

import pytest
import torch

from arnas_common.cli import available_cores
from arnas_common.cli import default_threads
from arnas_common.cli import set_threads
from arnas_common.errors import ConfigError


def test_threads_default_to_omp_num_threads_else_the_available_cores(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert default_threads() == 1 and set_threads(None) == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert default_threads() == available_cores() >= 1
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
        with pytest.raises(ConfigError, match="--threads"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("module", ["arnas_ray.search", "arnas_ray.sweep", "analysis.train"])
def test_help_shows_real_defaults(module) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "keys:" in done.stdout
    assert "PydanticUndefined" not in done.stdout and "ParamSpec(" not in done.stdout


@pytest.mark.parametrize(
    "module",
    ["arnas_ray.search", "arnas_ray.sweep", "analysis.train", "analysis.score", "analysis.report"],
)
def test_help_is_plain_text_and_every_option_explained(module) -> None:
    import re
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    assert not re.search(r"``|:class:|:func:|:mod:", done.stdout), "Sphinx markup in --help"
    options = re.findall(r"^  (--[\w-]+)(.*)$", done.stdout, re.M)
    assert (options or module == "analysis.report") and all(rest.strip() for _, rest in options), (
        options
    )


def test_yaml_12_numbers_and_duplicate_keys(tmp_path) -> None:
    from arnas_common.cli import apply_overrides
    from arnas_common.cli import load_yaml

    assert apply_overrides({}, ["lr=1e-3", "a.b=2E5", "n=10", "s=abc"]) == {
        "lr": 0.001,
        "a": {"b": 200000.0},
        "n": 10,
        "s": "abc",
    }
    path = tmp_path / "c.yaml"
    path.write_text("lr: 3e-4\nfixed:\n  epochs: 2\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="duplicate key 'epochs' \\(line 4\\)"):
        load_yaml(path)
    path.write_text("lr: 3e-4\n")
    assert load_yaml(path) == {"lr": 0.0003}


def test_every_config_key_has_a_meaning() -> None:
    from analysis.train import TrainConfig
    from arnas_ray.search import SearchConfig
    from arnas_ray.sweep import SweepConfig
    from search_spaces import SpaceConfig

    for model in (SearchConfig, SpaceConfig, SweepConfig, TrainConfig):
        missing = [name for name, field in model.model_fields.items() if not field.description]
        assert not missing, f"{model.__name__}: no description for {missing}"


def test_fatal_sweep_reasons_are_named_and_bugs_are_not() -> None:
    import errno

    import optuna

    from arnas_ray.sweep.faults import fatal_reason as _fatal_reason

    full = OSError(errno.ENOSPC, "No space left on device", "/run/tune/x.json")
    wrapped = RuntimeError("Tune failed")
    wrapped.__cause__ = full
    assert _fatal_reason(wrapped) == "No space left on device writing '/run/tune/x.json'"
    assert "Optuna storage failed" in _fatal_reason(
        optuna.exceptions.StorageInternalError("disk I/O error")
    )
    oom = RuntimeError(
        "Caught unexpected exception: 1 worker(s) were killed due to the node running low on "
        "memory"
    )
    assert "ran out of memory" in _fatal_reason(oom)
    assert _fatal_reason(KeyError("a bug")) is None
