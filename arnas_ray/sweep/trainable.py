"""Ray Tune function trainable around the Ray-free :class:`ArnasSearch` engine.

Each trial builds ``SearchConfig`` + ``SpaceConfig`` from its config (the
sweep's fixed keys plus the sampled ones), runs the search epoch by epoch,
reports the epoch's metrics with a checkpoint (``state.pt``: tensors only,
plus ``progress.json``), and resumes from the checkpoint Ray hands back after a
failure. The last report of a completed search carries ``search_finished =
True``; a trial stopped earlier (scheduler, time limit) never does.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from ray import tune

from arnas_common import metrics as M
from arnas_common.errors import ArnasError
from arnas_ray.search import ArnasSearch
from arnas_ray.search.run_config import RunConfig

__all__ = [
    "SEARCH_FINISHED",
    "TrialResourceError",
    "TrialTimeoutError",
    "train_search",
]

#: Report key: True only on the final epoch of a search that ran to the end.
SEARCH_FINISHED = "search_finished"
#: Environment variable for fault-injection tests: path of a marker file; the
#: trial raises once after its first checkpoint when the file does not exist.
FAIL_ONCE_ENV = "ARNAS_TEST_FAIL_ONCE"


class TrialTimeoutError(ArnasError):
    """The trial ran past ``trial_timeout_s``."""


class TrialResourceError(ArnasError):
    """The trial ran out of device memory."""


class InjectedFailure(RuntimeError):
    """Raised by the fault-injection hook of the tests."""


def _hard_watchdog(deadline: float, grace_s: float) -> threading.Timer:
    """Kill the worker process if the trial hangs past its deadline (no Python step ran)."""

    def kill() -> None:
        print(
            f"arnas-ray: trial exceeded its time limit by {grace_s:.0f}s and is hung; exiting",
            flush=True,
        )
        os._exit(70)

    timer = threading.Timer(max(deadline - time.time(), 0.0) + grace_s, kill)
    timer.daemon = True
    timer.start()
    return timer


def train_search(
    config: dict[str, Any],
    *,
    fixed: dict[str, Any] | None = None,
    trial_timeout_s: float | None = None,
    cpus: float = 1.0,
) -> None:
    """The Ray Tune function trainable.

    Args:
        config: the trial's sampled keys.
        fixed: run-config keys shared by every trial (``tune.with_parameters``).
        trial_timeout_s: wall-clock limit of the whole trial, across retries.
        cpus: CPUs granted to the trial; torch uses as many threads.
    """
    torch.set_num_threads(max(1, int(cpus)))
    # One line per epoch per trial ("Checkpoint successfully created at ...") drowns the console.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    run = RunConfig.from_flat(fixed).with_dotted(config, where="trial config")
    search_config, space = run.search, dict(run.space)
    search = ArnasSearch(search_config, space)
    elapsed_before = 0.0
    resumed_at: list[int] = []  # the epochs this trial resumed from, driver or node lost
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            search.load_checkpoint(Path(directory) / "state.pt")
            progress = json.loads((Path(directory) / "progress.json").read_text())
            elapsed_before = float(progress["elapsed_s"])
            resumed_at = [*map(int, progress.get("resumed_at", [])), search.epoch]
    started = time.time() - elapsed_before
    deadline = started + trial_timeout_s if trial_timeout_s else None
    watchdog = _hard_watchdog(deadline, grace_s=60.0) if deadline else None

    def check_time(_step: int, _out: dict[str, float]) -> None:
        if deadline is not None and time.time() > deadline:
            raise TrialTimeoutError(
                f"trial exceeded trial_timeout_s={trial_timeout_s:.0f}s at epoch "
                f"{search.epoch + 1}"
            )

    try:
        check_time(0, {})
        while search.epoch < search_config.epochs:
            try:
                row = search.train_epoch(progress=check_time)
            except torch.OutOfMemoryError as error:
                raise TrialResourceError(
                    f"out of device memory at batch_size={search_config.batch_size}: {error}; "
                    "lower batch_size, init_channels or layers, or give the trial a whole GPU"
                ) from None
            finished = search.epoch >= search_config.epochs
            report = dict(row)
            report[SEARCH_FINISHED] = finished
            with tempfile.TemporaryDirectory() as directory:
                search.save_checkpoint(Path(directory) / "state.pt")
                (Path(directory) / "progress.json").write_text(
                    json.dumps(
                        {
                            "epoch": search.epoch,
                            "elapsed_s": time.time() - started,
                            "resumed_at": resumed_at,
                            # the epochs up to this checkpoint, whatever Tune synced since
                            "history": [
                                {k: r[k] for k in M.HISTORY_KEYS if k in r} for r in search.history
                            ],
                        }
                    )
                )
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))
            marker = os.environ.get(FAIL_ONCE_ENV)
            if marker and not finished and not Path(marker).exists():
                Path(marker).write_text(f"failed once at epoch {row[M.EPOCH]}\n")
                raise InjectedFailure(f"injected failure after epoch {row[M.EPOCH]}")
    finally:
        if watchdog is not None:
            watchdog.cancel()
