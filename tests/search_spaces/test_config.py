from __future__ import annotations

import pytest
from pydantic import ValidationError

from search_spaces import ConfigError
from search_spaces import SpaceConfig


def test_defaults_are_the_papers_search_settings() -> None:
    config = SpaceConfig()
    assert (config.layers, config.init_channels, config.nodes, config.stem_multiplier) == (
        8,
        24,
        4,
        3,
    )
    assert config.robust_start is None and config.robust_width == 1.0
    assert len(config.primitives) == 7 and config.num_edges == 14


def test_round_trip_and_frozen() -> None:
    config = SpaceConfig(layers=5, robust_start=0.4, robust_width=2.0)
    assert SpaceConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValidationError, match="frozen"):
        config.layers = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"layer": 8}, "unknown key 'layer' \\(did you mean 'layers'\\?\\)"),
        ({"layers": "eight"}, "'layers' Input should be a valid integer"),
        ({"layers": True}, "'layers'"),
        ({"layers": 2}, "'layers' Input should be greater than or equal to 3"),
        ({"robust_start": 1.5}, "'robust_start'"),
        ({"robust_width": 9.0}, "'robust_width'"),
        ({"primitives": ["sep_conv_3x3", "sep_conv_3x4"]}, "did you mean 'sep_conv_3x3'"),
        ({"input_mean": [0.5, 0.5]}, "input_mean has 2 values but in_channels is 3"),
        ({"init_channels": 1}, "'init_channels' Input should be greater than or equal to 2"),
    ],
)
def test_bad_values_raise_one_clear_error(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SpaceConfig.from_dict(data, where="space")


def test_every_bad_key_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        SpaceConfig.from_dict({"layerz": 1, "nodez": 2, "init_channels": "x"})
    assert len(str(info.value).splitlines()) == 3
