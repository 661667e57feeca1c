"""Files: atomic writes (a reader never sees a half-written result), untrusted reads (every
failure one :class:`~arnas_common.errors.ArnasError`), safe names and paths that stay
inside their run directory, and one writer per directory (an exclusive lock)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import reprlib
import shutil
import tempfile
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from typing import Any

from arnas_common.errors import ArnasError

__all__ = [
    "SAFE_NAME",
    "atomic_write",
    "atomic_write_text",
    "check_name",
    "exclusive_lock",
    "inside",
    "read_json",
    "read_text",
    "remove_orphan_temporaries",
    "short_repr",
]


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], binary: bool = False
) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o644)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        # torch.save reports a full disk as a RuntimeError of its zip writer, sometimes
        # raised while closing after the ENOSPC itself: judged before the temporary file
        # goes (removing it frees the space)
        full = (
            isinstance(error, Exception)
            and not isinstance(error, OSError)
            and (_caused_by_full_disk(error) or _disk_full(path.parent))
        )
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
        raise
    return path


def _caused_by_full_disk(error: BaseException) -> bool:
    """Whether ENOSPC is anywhere in ``error``'s chain of causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        current = current.__cause__ or current.__context__
    return False


def _disk_full(folder: Path) -> bool:
    """Whether ``folder``'s file system has (almost) no space left."""
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text))


def remove_orphan_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files interrupted :func:`atomic_write` calls left under ``directory``.

    Only call it while no writer is active there (e.g. holding the run directory's lock).
    """
    removed = []
    for path in Path(directory).rglob(".*.tmp"):
        if path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


# -- reading what a run directory or a user hands us: untrusted -------------------------
#: A name that may become one path component: letters, digits, ``.``, ``_``, ``-``; no
#: leading dot, no ``..``, at most 128 characters.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Largest file a reader here loads (configs, records, manifests): far above any real one.
MAX_FILE_BYTES = 64 * 1024 * 1024


def check_name(value: Any, what: str, where: str) -> str:
    """``value`` if it is a :data:`SAFE_NAME` (it may become a folder or file name).

    Raises:
        ArnasError: anything else (path separators, ``..``, empty, too long, not a string).
    """
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ArnasError(
            f"{where}: {what} {short_repr(value)} is not a safe name (letters, digits, '.', "
            f"'_', '-'; "
            "no path separators or '..'); the file was not written by arnas-ray or was edited"
        )
    return value


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str], what: str = "path") -> Path:
    """``path`` resolved, if it lies inside ``root`` (resolved): the last check before a write.

    Raises:
        ArnasError: it would leave ``root`` (``..``, an absolute name, a symbolic link out).
    """
    try:
        resolved, base = Path(path).resolve(), Path(root).resolve()
    except (RuntimeError, OSError) as error:  # a loop of symbolic links
        raise ArnasError(f"{what} '{path}' cannot be resolved ({error})") from None
    if resolved != base and base not in resolved.parents:
        raise ArnasError(f"{what} '{path}' lies outside '{root}'; refusing to write there")
    return resolved


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (huge or deeply nested values stay short)."""
    shortener = reprlib.Repr()  # keyword arguments need Python 3.12
    shortener.maxlevel, shortener.maxstring, shortener.maxother = 3, limit, limit
    text = shortener.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """A UTF-8 text file's contents; every way it can fail is one :class:`ArnasError`."""
    path = Path(path)
    try:
        if not path.is_file():
            if path.is_symlink():
                raise ArnasError(f"{what} '{path}' is a symbolic link that loops or leads nowhere")
            if path.is_dir():
                raise ArnasError(f"{what} '{path}' is a directory; give a file")
            raise ArnasError(f"{what} '{path}' does not exist")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ArnasError(
                f"{what} '{path}' is larger than {MAX_FILE_BYTES >> 20} MiB; it is not one of ours"
            )
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArnasError(
            f"{what} '{path}' is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except (
        OSError
    ) as error:  # a loop of symbolic links, permissions, a folder where a file should be
        raise ArnasError(f"{what} '{path}' cannot be read ({error.strerror or error})") from None


def read_json(path: str | os.PathLike[str], what: str = "file") -> Any:
    """A JSON file's contents (:func:`read_text`); invalid or absurdly nested JSON is one line."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ArnasError(
            f"{what} '{path}' is not valid JSON ({error}); was it cut short?"
        ) from None
    except RecursionError:
        raise ArnasError(
            f"{what} '{path}' nests deeper than Python can read; it is not one of ours"
        ) from None


@contextlib.contextmanager
def exclusive_lock(directory: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Hold ``directory/.lock`` for the duration (one writer per directory, across processes).

    Raises:
        ArnasError: another process holds it.
    """
    from filelock import FileLock
    from filelock import Timeout

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ArnasError(
            f"another {command} is writing into '{directory}'; wait for it to end, or use another "
            "run directory"
        ) from None
    try:
        yield directory
    finally:
        lock.release()
