"""Frozen, validated configuration models shared by all packages.

Every config of the project is a pydantic model that is immutable, rejects
unknown keys, and converts pydantic's validation report into one
:class:`~arnas_common.errors.ConfigError` whose lines each name one bad key or
value, with a near-miss suggestion for misspelt keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from typing import Any
from typing import Self

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError

from arnas_common.errors import ConfigError
from arnas_common.errors import near_miss
from arnas_common.io import short_repr

__all__ = ["MAX_INT", "Bool", "Float", "FrozenConfig", "Int", "format_validation_error"]

#: Largest integer any config key takes: what torch and numpy take for seeds and sizes
#: (a larger count would fail every trial at run time, after validation passed).
MAX_INT = 2**31 - 1


def _bounded(value: int) -> int:
    # A validator, not ``le=``: pydantic keeps only one ``le`` per field, and a field's own
    # (e.g. ``layers`` <= 100) must not be replaced by this library-wide bound.
    if abs(value) > MAX_INT:
        raise ValueError(f"must lie within +-{MAX_INT} (2**31 - 1)")
    return value


#: Config value types: strict (``true`` is no number, ``"3"`` no integer) and bounded.
Int = Annotated[int, Field(strict=True), AfterValidator(_bounded)]
Float = Annotated[float, Field(strict=True)]
Bool = Annotated[bool, Field(strict=True)]


def format_validation_error(
    error: ValidationError,
    model: type[BaseModel],
    where: str,
    sources: Mapping[str, str] | None = None,
) -> str:
    """Turn a pydantic error into one line per problem, each naming where its value came
    from: ``sources`` maps a top-level key to e.g. ``--set epochs=0``; else ``where``."""
    fields = list(model.model_fields)
    lines = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"]) or "(config)"
        where_ = (sources or {}).get(str(item["loc"][0]), where) if item["loc"] else where
        if item["type"] == "extra_forbidden":
            lines.append(
                f"{where_}: unknown key '{loc}'{near_miss(loc, fields)}; "
                f"valid keys are: {', '.join(fields)}"
            )
            continue
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "value_error" and loc == "(config)":
            lines.append(f"{where_}: {message}")
        else:
            lines.append(f"{where_}: '{loc}' {message}; got {short_repr(item.get('input'))}")
    return "\n".join(lines)


class FrozenConfig(BaseModel):
    """Base class: immutable, unknown keys and non-finite numbers rejected, JSON round-trip."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False
    )

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any] | None = None,
        *,
        where: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> Self:
        """Validate ``data``; raise :class:`ConfigError` naming every bad key (and, through
        ``sources``, whether its value came from the file or the command line)."""
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(
                f"{where or cls.__name__}: expected a mapping of keys to values, "
                f"got {type(data).__name__}"
            )
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as error:
            raise ConfigError(
                format_validation_error(error, cls, where or cls.__name__, sources)
            ) from None

    def to_dict(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """Plain JSON-compatible dict; ``from_dict(to_dict())`` gives an equal config."""
        return self.model_dump(mode="json", exclude_none=exclude_none)

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied."""
        return type(self).from_dict({**self.to_dict(), **changes}, where=type(self).__name__)
