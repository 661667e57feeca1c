"""Every config class of the project, found by registry (FrozenConfig's subclasses):
JSON round trip, frozen, unknown keys refused, every key described."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

# Imported for their config classes (the registry below is FrozenConfig's subclasses).
import analysis.score  # noqa: F401
import analysis.train  # noqa: F401
import arnas_ray.search.config  # noqa: F401
import arnas_ray.sweep.config  # noqa: F401
from arnas_common.config_base import FrozenConfig
from arnas_common.errors import ConfigError


def _all(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_all(sub))]


CONFIGS = sorted(set(_all(FrozenConfig)), key=lambda c: c.__name__)
#: Classes whose defaults are not a valid config on their own, with the keys they need.
REQUIRED = {"ParamSpec": {"type": "uniform", "low": 0.1, "high": 1.0}, "Limit": {"max": 1.0}}


def test_the_registry_finds_every_config() -> None:
    names = {c.__name__ for c in CONFIGS}
    assert {
        "SpaceConfig",
        "SearchConfig",
        "DataConfig",
        "RobustPlacement",
        "TrainConfig",
        "ScoreConfig",
        "SweepConfig",
        "ParamSpec",
        "Resources",
        "SchedulerSpec",
    } <= names


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_json_round_trip_frozen_and_strict(cls) -> None:
    config = cls.from_dict(REQUIRED.get(cls.__name__, {}))
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    field = next(iter(cls.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(config, field, getattr(config, field))
    with pytest.raises(ConfigError, match="unknown key 'not_a_key'"):
        cls.from_dict({**REQUIRED.get(cls.__name__, {}), "not_a_key": 1})


@pytest.mark.parametrize(
    "cls", [c for c in CONFIGS if c.__name__ not in ("ParamSpec",)], ids=lambda c: c.__name__
)
def test_every_key_has_a_description(cls) -> None:
    assert [k for k, f in cls.model_fields.items() if not f.description] == []
