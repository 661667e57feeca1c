"""Dotted keys (``train_attack.eps``), the one spelling of a nested config key, and the one
comparison of two configs every resume check uses (:func:`diff_configs`)."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

__all__ = ["diff_configs", "flatten_dotted", "get_dotted", "nest_dotted"]


def nest_dotted(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"train_attack.eps": 0.1}`` -> ``{"train_attack": {"eps": 0.1}}``, merged into the
    nested mappings already there (a sweep samples dotted keys beside its fixed ones)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = str(key).split(".")
        target = out
        for part in parents:
            child = target.get(part)
            target[part] = child = dict(child) if isinstance(child, Mapping) else {}
            target = child
        if isinstance(value, Mapping) and isinstance(target.get(leaf), Mapping):
            value = {**target[leaf], **value}
        target[leaf] = dict(value) if isinstance(value, Mapping) else value
    return out


def flatten_dotted(data: Any, prefix: str = "") -> dict[str, Any]:
    """The inverse of :func:`nest_dotted`: nested mappings become dotted keys (an empty
    mapping stays one key, so it still compares)."""
    if isinstance(data, Mapping):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten_dotted(value, f"{prefix}{key}."))
        return flat or ({prefix.rstrip("."): {}} if prefix else {})
    return {prefix.rstrip("."): data}


def get_dotted(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``config["train_attack"]["eps"]`` for ``key = "train_attack.eps"``."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def diff_configs(
    a: Mapping[str, Any], b: Mapping[str, Any], ignore: Iterable[str] = ()
) -> list[str]:
    """The dotted keys whose values differ between ``a`` and ``b`` (a key on one side only
    differs), sorted; ``ignore``: dotted keys (or their parents) that may differ."""
    ignored = tuple(ignore)
    old, new = flatten_dotted(a), flatten_dotted(b)
    return sorted(
        key
        for key in old.keys() | new.keys()
        if old.get(key) != new.get(key)
        and not any(key == i or key.startswith(f"{i}.") for i in ignored)
    )
