"""Command-line plumbing shared by the project's commands (search, sweep, train, score, report)."""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import TypeAdapter

from arnas_common.errors import ArnasError
from arnas_common.errors import ConfigError
from arnas_common.io import read_text

__all__ = [
    "DISK_ERRORS",
    "ArgumentParser",
    "ConfigLoader",
    "add_set_argument",
    "add_threads_argument",
    "apply_overrides",
    "available_cores",
    "check_out_dir",
    "default_threads",
    "describe_fields",
    "load_yaml",
    "override_sources",
    "parse_yaml",
    "resolve_path",
    "run_cli",
    "set_threads",
]


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers (``1e-3`` is a float, as in JSON)
    and duplicate keys rejected instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (line {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)$|^[-+]?[0-9][0-9_]*\.[0-9_]*$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


#: Most values a config may expand to, and its deepest nesting: far above any real config,
#: far below what a YAML alias bomb ("billion laughs": aliases of aliases) expands to.
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_DEPTH = 32


def _check_size(data: Any, where: str) -> None:
    """Count the values ``data`` expands to (an alias counts each time it is used)."""
    count, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{where}: expands to more than {MAX_CONFIG_VALUES:,} values (YAML aliases of "
                "aliases?); write the values out"
            )
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{where}: nests deeper than {MAX_CONFIG_DEPTH} levels; flatten it")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for kv in value.items() for v in kv)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def parse_yaml(text: str, where: str = "config") -> Any:
    """YAML text with :class:`ConfigLoader`, refused when it expands beyond
    :data:`MAX_CONFIG_VALUES` values or :data:`MAX_CONFIG_DEPTH` levels.

    Raises:
        ConfigError: runaway nesting or expansion.
        yaml.YAMLError: not YAML.
    """
    try:
        data = yaml.load(text, Loader=ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise ConfigError(f"{where}: nests deeper than YAML can be read; flatten it") from None
    _check_size(data, where)
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (empty file = empty mapping).

    Raises:
        ConfigError: missing, unreadable (not UTF-8, a loop of links), not YAML, runaway,
            or not a mapping.
    """
    path = Path(path)
    try:
        text = read_text(path, "config file")
    except ArnasError as error:
        raise ConfigError(str(error)) from None
    try:
        data = parse_yaml(text, str(path))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings (values parsed as YAML; dotted keys nest)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got '{item}'")
        try:
            value = parse_yaml(raw, f"--set {key.strip()}") if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        target = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[leaf] = value
    return out


def override_sources(overrides: Sequence[str], prefix: str = "") -> dict[str, str]:
    """Key -> ``--set KEY=VALUE`` for the overrides under ``prefix`` (``"fixed."``: the
    sweep's fixed keys), so an error names the command line, not the file."""
    sources = {}
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key.startswith(prefix) and key != prefix:
            sources[key[len(prefix) :].split(".")[0]] = f"--set {item}"
    return sources


def resolve_path(path: str | Path) -> Path:
    """``path`` made absolute against the directory the command was started from
    (before anything hands it to Ray, whose workers run elsewhere).

    Raises:
        ConfigError: it runs through a loop of symbolic links.
    """
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as error:  # Python 3.11 raises RuntimeError for a link loop
        raise ConfigError(
            f"path '{path}' cannot be resolved ({error}); fix the symbolic links"
        ) from None


def check_out_dir(path: str | Path) -> Path:
    """``path`` (absolute) if it is, or can become, a writable directory; created later,
    by the first write, so a rejected command leaves nothing behind.

    Raises:
        ConfigError: it is a file, or the nearest existing folder is not writable.
    """
    path = resolve_path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out '{path}' is a file; choose a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--out '{path}' cannot be written ('{existing}' is not writable); choose another "
            f"directory"
        )
    return path


def describe_fields(*models: type[BaseModel]) -> str:
    """One help line per config key: name, default, description."""
    lines = []
    for model in models:
        lines.append(f"{model.__name__} keys:")
        for name, field in model.model_fields.items():
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel) or (
                isinstance(default, dict)
                and any(isinstance(v, BaseModel) for v in default.values())
            ):  # nested configs: their plain values, as a YAML file would hold them
                default = TypeAdapter(type(default)).dump_python(
                    default, mode="json", exclude_none=True
                )
            text = field.description or ""
            lines.append(f"  {name:<28} {default!r:<22} {text}")
    return "\n".join(lines)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error style: one ``error:`` line, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "formatter_class", argparse.RawDescriptionHelpFormatter
        )  # keep our line breaks
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """The ``--set KEY=VALUE`` override option shared by every command."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config key (repeatable; value parsed as YAML), e.g. {example}",
    )


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, e.g. a container's limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set (the OpenMP convention), else the available cores."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else available_cores()


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's intra-op threads for this command."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help=f"torch intra-op threads (default: OMP_NUM_THREADS, else the cores this process "
        f"may use: {default_threads()} here); more threads than free cores makes CPU work "
        "many times slower",
    )


def set_threads(threads: int | None) -> int:
    """Give torch ``threads`` intra-op threads (``None``: :func:`default_threads`)."""
    import torch

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


#: errno values of a disk that takes no more writes: full, over quota, read-only.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def run_cli(main: Callable[[], int]) -> None:
    """Run ``main``; user mistakes print one line and exit 2 without a traceback."""
    try:
        code = main()
    except ArnasError as error:
        lines = str(error).splitlines() or [type(error).__name__]
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        # Every result is written atomically: the last checkpoint and results survive intact.
        where = f" writing '{error.filename}'" if error.filename else ""
        print(
            f"error: {error.strerror or 'disk full'}{where}; free space, then run the same "
            "command with --resume to continue from the last checkpoint",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(code)
