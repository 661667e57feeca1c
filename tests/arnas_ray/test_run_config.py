"""One run config, parsed once: RunConfig's forms agree, it is frozen, and every resume
check (search, sweep, final training) compares configs the same way."""

from __future__ import annotations

import pickle

import pytest
import yaml

from arnas_common.dotted import diff_configs
from arnas_common.dotted import flatten_dotted
from arnas_common.dotted import nest_dotted
from arnas_common.errors import CheckpointError
from arnas_common.errors import ConfigError
from arnas_ray.search.engine import check_checkpoint
from arnas_ray.search.run_config import RUNTIME_ONLY_KEYS
from arnas_ray.search.run_config import RunConfig
from arnas_ray.sweep import SweepConfig
from arnas_ray.sweep.rundir import changed_keys
from tests.helpers import write_sweep_config

GIVEN = {"dataset": "digits", "epochs": 3, "layers": 4, "train_attack": {"steps": 2}}


def test_dotted_and_nested_forms_are_one_config() -> None:
    run = RunConfig.from_flat(GIVEN)
    dotted = RunConfig.from_flat({**GIVEN, "train_attack": {}, "train_attack.steps": 2})
    assert run == dotted == GIVEN and run.to_flat()["train_attack.steps"] == 2
    assert run.search.epochs == 3 and run.search.train_attack.steps == 2
    assert dict(run.space) == {"layers": 4}
    assert RunConfig.from_flat(run.to_dict()) == run == RunConfig.from_flat(run.to_flat())
    assert pickle.loads(pickle.dumps(run)) == run
    assert yaml.safe_load(yaml.safe_dump(run.to_dict())) == run.to_dict()


def test_with_dotted_merges_key_by_key_and_validates() -> None:
    run = RunConfig.from_flat(GIVEN)
    changed = run.with_dotted({"train_attack.eps": 0.01, "lr": 0.1})
    assert changed.search.train_attack.steps == 2 and changed.search.train_attack.eps == 0.01
    assert changed.search.lr == 0.1 and run.search.lr != 0.1  # a copy; run unchanged
    with pytest.raises(ConfigError, match="unknown key 'epoch'.*did you mean 'epochs'"):
        run.with_dotted({"epoch": 2})
    with pytest.raises(ConfigError, match="train_attack"):
        run.with_dotted({"train_attack.eps": 9.0})


def test_it_is_frozen() -> None:
    run = RunConfig.from_flat(GIVEN)
    with pytest.raises(AttributeError, match="frozen"):
        run.search = None  # type: ignore[misc]
    run["train_attack"]["steps"] = 99  # a copy comes out
    assert run.search.train_attack.steps == 2 and run["train_attack"] == {"steps": 2}


def test_diff_configs_names_dotted_keys_and_skips_runtime_ones() -> None:
    a = {"lr": 0.1, "device": "cpu", "train_attack": {"eps": 0.1, "steps": 2}}
    b = {"lr": 0.1, "device": "cuda", "train_attack": {"eps": 0.2, "steps": 2}, "new": 1}
    assert diff_configs(a, b) == ["device", "new", "train_attack.eps"]
    assert diff_configs(a, b, ignore=RUNTIME_ONLY_KEYS) == ["new", "train_attack.eps"]
    assert diff_configs(a, b, ignore=["train_attack"]) == ["device", "new"]
    assert nest_dotted(flatten_dotted(a)) == a


def test_every_resume_check_lets_runtime_keys_change_and_names_the_rest(tmp_path) -> None:
    run = RunConfig.from_flat(GIVEN)
    # search: the engine's checkpoint check
    state = {"config": run.search.to_dict(), "space": None}
    check_checkpoint(state, run.with_dotted({"device": "cpu", "data_root": "/x"}).search, None)
    with pytest.raises(CheckpointError, match="changed: lr"):
        check_checkpoint(state, run.with_dotted({"lr": 0.5}).search, None)
    # sweep: the run directory's check
    data = yaml.safe_load(write_sweep_config(tmp_path).read_text())
    sweep = SweepConfig.from_dict(data)
    assert isinstance(sweep.fixed, RunConfig) and isinstance(sweep.to_dict()["fixed"], dict)
    moved = sweep.replace(fixed=sweep.fixed.with_dotted({"device": "cpu", "lr": 0.5}).to_dict())
    assert changed_keys(sweep.to_dict(), moved.to_dict()) == ["fixed.lr"]


def test_final_training_resume_check_lets_runtime_keys_change(tmp_path) -> None:
    from analysis.trainer import TrainConfig
    from analysis.trainer import check_resumable
    from search_spaces import genotypes
    from search_spaces.config import SpaceConfig
    from search_spaces.spec import NetworkSpec

    config = TrainConfig.from_dict({"dataset": "digits", "epochs": 1})
    spec = NetworkSpec.from_space(genotypes.get("ARNAS"), SpaceConfig())
    state = {"config": config.to_dict(), "network": spec.to_dict()}
    check_resumable(state, config.replace(device="cpu", data_root=str(tmp_path)), spec, tmp_path)
    with pytest.raises(CheckpointError, match="changed: epochs"):
        check_resumable(state, config.replace(epochs=2), spec, tmp_path)
