"""What ends a sweep from outside its code, and how the driver meets it: an unreachable
``--address`` (checked in seconds; Ray retries for minutes), a full disk, a failing Optuna
storage, Ray killing a worker for memory (one line naming the cause and ``--resume``),
SIGTERM / SIGHUP (handled as Ctrl-C, so the Ray processes the driver started are shut
down) and Ray's world-readable token file (made 0600)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import optuna

from arnas_common.cli import DISK_ERRORS
from arnas_common.errors import ConfigError

__all__ = ["check_reachable", "fatal_reason", "terminate_as_interrupt"]

#: Seconds the reachability check of ``--address HOST:PORT`` waits.
ADDRESS_TIMEOUT_S = 5.0
#: Where Ray 2.60 writes the authentication token it generates.


def fatal_reason(error: BaseException) -> str | None:
    """What ended a sweep from outside the code (a full disk, the study's storage, a worker
    killed for memory), in a few words; ``None`` for anything else (a bug: keep the trace)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        text = str(item)
        if isinstance(item, OSError) and item.errno in DISK_ERRORS:
            where = f" writing '{item.filename}'" if item.filename else ""
            return f"{item.strerror or 'disk full'}{where}"
        if isinstance(item, optuna.exceptions.StorageInternalError):
            detail = text.splitlines()[0][:200] if text else "no detail"
            return f"the Optuna storage failed ({detail})"
        if "OutOfMemoryError" in type(item).__name__ or "running low on memory" in text:
            return (
                "Ray killed a trial worker: the machine ran out of memory (lower max_concurrent)"
            )
        if _disk_full_message(str(item)):
            return "no space left on the run directory's disk"
    return None


def _disk_full_message(text: str) -> bool:
    return (
        "No space left on device" in text
        or "unexpected pos" in text
        and "inline_container" in text
    )


def check_reachable(address: str, timeout_s: float = ADDRESS_TIMEOUT_S) -> None:
    """A TCP connection to ``HOST:PORT`` within ``timeout_s`` (``auto`` and ``ray://`` are
    left to Ray).

    Raises:
        ConfigError: not HOST:PORT, or nothing answers there.
    """
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"sweep: --address must be auto or HOST:PORT, got '{address}'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConfigError(
            f"sweep: nothing answers at --address {address} within {timeout_s:g} s "
            f"({error.strerror or error}); start the cluster (ray start --head) or fix the address"
        ) from None


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the driver like Ctrl-C: ``finally`` blocks run, so the Ray
    processes it started are shut down (a SIGKILL cannot be caught; README says what is left)."""

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
