"""A sweep's search space: how each run-config key is sampled (:class:`ParamSpec`) and in
which order, so that every ``when`` condition is sampled before the key it conditions."""

from __future__ import annotations

import math
from typing import Any
from typing import Literal

from pydantic import model_validator

from arnas_common.config_base import MAX_INT
from arnas_common.config_base import Float
from arnas_common.config_base import FrozenConfig
from arnas_common.errors import ConfigError

__all__ = ["ParamSpec", "check_enqueue", "check_value", "sampling_order"]


class ParamSpec(FrozenConfig):
    """How one run-config key is sampled.

    ``type``: ``loguniform`` / ``uniform`` (``low``, ``high``), ``int``
    (``low``, ``high``, integers) or ``choice`` (``values``). ``when``: sample
    only if the named choice parameters took these values (else the key keeps
    its fixed/default value), e.g. ``natural_weight`` only for ``arch_mode:
    weighted``.
    """

    type: Literal["loguniform", "uniform", "int", "choice"]
    low: Float | None = None
    high: Float | None = None
    values: list[Any] | None = None
    when: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice parameter needs a non-empty 'values' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a choice parameter takes 'values', not 'low' / 'high'")
        else:
            if self.values is not None:
                raise ValueError(f"a {self.type} parameter takes 'low' and 'high', not 'values'")
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
            if not self.low < self.high:
                raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
            if self.type == "loguniform" and self.low <= 0:
                raise ValueError("a loguniform parameter needs low > 0")
            if self.type == "int" and not (
                float(self.low).is_integer() and float(self.high).is_integer()
            ):
                raise ValueError(
                    f"an int parameter needs whole 'low' and 'high', got {self.low} and "
                    f"{self.high}"
                )
            if self.type == "int" and max(abs(self.low), abs(self.high)) > MAX_INT:
                raise ValueError(f"an int parameter's bounds must lie within +-{MAX_INT}")
        return self

    def probe_values(self) -> list[Any]:
        """Values that must all give a valid run config."""
        if self.type == "choice":
            return list(self.values or [])
        assert self.low is not None and self.high is not None  # checked by the validator
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


def sampling_order(space: dict[str, ParamSpec]) -> list[str]:
    """The sampled keys in an order in which every ``when`` condition is sampled before the
    key it conditions (a topological order of the ``when`` graph).

    Raises:
        ConfigError: the conditions form a cycle (``a`` when ``b`` and ``b`` when ``a``).
    """
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = " -> ".join([*path[path.index(key) :], key])
            raise ConfigError(
                f"sweep.search_space: the 'when' conditions form a cycle ({cycle}); "
                "no key in it could ever be sampled"
            )
        state[key] = 1
        for condition in space[key].when or {}:
            if condition in space:
                visit(condition, [*path, key])
        state[key] = 2
        order.append(key)

    for key in space:
        visit(key, [])
    return order


def check_value(spec: ParamSpec, value: Any, where: str) -> None:
    if spec.type == "choice":
        if value not in (spec.values or []):
            raise ConfigError(f"{where}: {value!r} is not one of the choices {spec.values}")
        return
    assert spec.low is not None and spec.high is not None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a number")
    if not spec.low <= value <= spec.high:
        raise ConfigError(f"{where}: {value!r} lies outside [{spec.low:g}, {spec.high:g}]")
    if spec.type == "int" and float(value) != int(value):
        raise ConfigError(f"{where}: {value!r} is not a whole number")


def check_enqueue(enqueue: list[dict[str, Any]], space: dict[str, ParamSpec]) -> list[str]:
    """Problems of a sweep's ``enqueue``: unknown keys, values the space cannot take."""
    errors = []
    for k, params in enumerate(enqueue):
        for key, value in params.items():
            where = f"sweep.enqueue[{k}].{key}"
            spec = space.get(key)
            if spec is None:
                errors.append(
                    f"{where}: '{key}' is not a search_space key; enqueue only sampled keys"
                )
                continue
            try:
                check_value(spec, value, where)
            except ConfigError as error:
                errors.append(str(error))
    return errors
