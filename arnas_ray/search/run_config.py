"""One run config, parsed once: the :class:`SearchConfig` and the space keys of a search.

A run is configured by one mapping of :class:`SearchConfig` and
:class:`~search_spaces.config.SpaceConfig` keys (nested attacks also as dotted keys,
``train_attack.eps``). :class:`RunConfig` is that mapping validated: the sweep's
``fixed`` part, a trial's config, a search's file. It reads as the mapping it was given
(so ``{**run, ...}`` and ``run.get(key)`` work) and holds the typed parts.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from arnas_common.dotted import diff_configs
from arnas_common.dotted import flatten_dotted
from arnas_common.dotted import get_dotted
from arnas_common.dotted import nest_dotted
from arnas_ray.search.config import SearchConfig
from arnas_ray.search.config import split_run_config

__all__ = ["RUNTIME_ONLY_KEYS", "RunConfig"]

#: Run-config keys that may differ between a run and its resumption: where it runs and
#: where its data lies, not what it computes (every resume check ignores them).
RUNTIME_ONLY_KEYS = ("device", "num_workers", "data_root")


class RunConfig(Mapping[str, Any]):
    """A validated run config (frozen). Build it with :meth:`from_flat`.

    Attributes:
        search: the :class:`SearchConfig` (defaults filled in).
        space: the :class:`~search_spaces.config.SpaceConfig` keys given (the dataset's
            classes, channels and statistics are added by ``space_for``).
    """

    __slots__ = ("_given", "search", "space")
    _given: Mapping[str, Any]
    search: SearchConfig
    space: Mapping[str, Any]

    def __init__(self, given: Mapping[str, Any], search: SearchConfig, space: Mapping[str, Any]):
        object.__setattr__(self, "_given", MappingProxyType(nest_dotted(given)))
        object.__setattr__(self, "search", search)
        object.__setattr__(self, "space", MappingProxyType(dict(space)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"RunConfig is frozen: use with_dotted({{{name!r}: ...}})")

    @classmethod
    def from_flat(
        cls,
        data: Mapping[str, Any] | RunConfig | None = None,
        where: str = "config",
        sources: Mapping[str, str] | None = None,
    ) -> RunConfig:
        """Validate a run-config mapping (dotted or nested keys).

        Raises:
            ConfigError: one line per unknown key or bad value.
        """
        if isinstance(data, RunConfig):
            return data
        given = {} if data is None else data
        search, space = split_run_config(given, where=where, sources=sources)
        return cls(given, search, space)

    def with_dotted(
        self, changes: Mapping[str, Any], where: str = "config", **kw: Any
    ) -> RunConfig:
        """A validated copy with ``changes`` (dotted or nested keys) merged in, key by key
        (``train_attack.eps`` keeps the other attack keys)."""
        merged = {**self.to_flat(), **flatten_dotted(changes)}
        return RunConfig.from_flat(nest_dotted(merged), where=where, **kw)

    def to_dict(self) -> dict[str, Any]:
        """The keys as given, nested (what YAML and run.json hold)."""
        return nest_dotted(self._given)

    def to_flat(self) -> dict[str, Any]:
        """The keys as given, nested ones dotted."""
        return flatten_dotted(self._given)

    def get_dotted(self, key: str, default: Any = None) -> Any:
        """The value given for a dotted key (``train_attack.eps``), else ``default``."""
        return get_dotted(self._given, key, default)

    def changed_keys(self, other: Mapping[str, Any]) -> list[str]:
        """Dotted keys that differ from ``other``, runtime-only keys excepted."""
        return diff_configs(self, other, ignore=RUNTIME_ONLY_KEYS)

    # -- the mapping of the keys as given --
    def __getitem__(self, key: str) -> Any:
        value = self._given[key]
        return nest_dotted(value) if isinstance(value, Mapping) else value  # a copy

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_dict() == nest_dotted(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a mapping, compared by value

    def __repr__(self) -> str:
        return f"RunConfig({self.to_dict()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunConfig.from_flat, (self.to_dict(),))
