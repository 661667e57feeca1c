"""A full disk mid-run: one ``error:`` line, the last checkpoint intact, ``--resume`` exact.

Each test mounts a small tmpfs of its own (the tests run as root; elsewhere they are
skipped) and fills it while the command runs, right after its first checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


SEARCH = [
    *_sets("dataset=digits", "image_size=8", "data_limit=120", "epochs=3", "steps_per_epoch=2"),
    *_sets("val_limit=16", "layers=4", "init_channels=4", "nodes=1", "train_attack.steps=1"),
    *_sets("search_attack.steps=1", "val_attack_steps=1"),
    "--quiet",
]
TRAIN = [
    *_sets("dataset=digits", "image_size=8", "data_limit=200", "val_limit=16", "epochs=3"),
    *_sets("batch_size=16", "steps_per_epoch=2", "layers=3", "init_channels=4", "cutout=0"),
    *_sets("attack.steps=1", "val_attack_steps=1"),
]


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    command = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill_after(first: Path | str, disk: Path, stop: threading.Event) -> threading.Thread:
    """Fill ``disk`` to the last few KiB as soon as ``first`` exists (a path, or a glob
    pattern under ``disk``)."""

    def present() -> bool:
        return first.exists() if isinstance(first, Path) else any(disk.glob(first))

    def fill() -> None:
        while not present() and not stop.is_set():
            time.sleep(0.01)
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as handle:
            handle.write(b"\0" * (shutil.disk_usage(disk).free - 8 * 1024))

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    return thread


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=600, env=env
    )


def _one_disk_error(done: subprocess.CompletedProcess) -> None:
    """Exit 2, no traceback, one ``error:`` line (after any progress bar) naming the file."""
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: No space left on device"), done.stderr
    assert done.stderr.strip().endswith(lines[0]) and "Traceback" not in done.stderr
    assert "--resume" in lines[0]


def test_search_on_a_full_disk_stops_in_one_line_and_resumes_exactly(small_disk, tmp_path) -> None:
    out = small_disk / "run"
    stop = threading.Event()
    filler = _fill_after(out / "checkpoint.pt", small_disk, stop)
    full = _run(["-m", "arnas_ray.search", *SEARCH, "--out", str(out)])
    stop.set()
    filler.join()
    _one_disk_error(full)
    kept = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert 1 <= len(kept) < 3 and not list(out.glob(".*.tmp"))  # the last good epoch, no debris
    (small_disk / "filler").unlink()
    resumed = _run(["-m", "arnas_ray.search", *SEARCH, "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = _run(["-m", "arnas_ray.search", *SEARCH, "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr[-2000:]

    def rows(path: Path) -> list[dict]:
        return [
            {k: v for k, v in json.loads(line).items() if k != "epoch_time_s"}
            for line in path.read_text().splitlines()
        ]

    assert rows(out / "metrics.jsonl") == rows(tmp_path / "straight" / "metrics.jsonl")


def test_final_training_on_a_full_disk_stops_in_one_line(small_disk) -> None:
    out = small_disk / "train"
    stop = threading.Event()
    filler = _fill_after(out / "last.pt", small_disk, stop)
    argv = ["-m", "analysis.train", "--genotype", "DARTS_V2", *TRAIN, "--out", str(out)]
    full = _run(argv)
    stop.set()
    filler.join()
    _one_disk_error(full)
    (small_disk / "filler").unlink()
    resumed = _run([*argv, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2, 3]


@pytest.mark.slow
def test_sweep_on_a_full_disk_ends_in_one_line_and_resume_answers_in_seconds(
    small_disk, tmp_path
) -> None:
    """Trials fail with a clear reason, the driver ends with one line (never a traceback or a
    silent wait), and a later --resume continues or names the damage within seconds."""
    from tests.helpers import write_sweep_config

    out = small_disk / "run"
    config = write_sweep_config(tmp_path, out=str(out), trials=3, max_failures=0)
    stop = threading.Event()
    filler = _fill_after("run/tune/*/checkpoint_*", small_disk, stop)  # the first trial checkpoint
    started = time.monotonic()
    full = _run(["-m", "arnas_ray.sweep", "--quiet", "--config", str(config)])
    stop.set()
    filler.join()
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert full.returncode != 0 and "Traceback" not in full.stderr[-3000:], full.stderr[-3000:]
    assert len(errors) == 1, full.stderr[-3000:]
    assert time.monotonic() - started < 300
    (small_disk / "filler").unlink()
    started = time.monotonic()
    resumed = _run(["-m", "arnas_ray.sweep", "--quiet", "--config", str(config), "--resume"])
    if resumed.returncode != 0:  # the damage is named, quickly, in one line
        errors = [line for line in resumed.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
        assert time.monotonic() - started < 60
    else:  # or the sweep continued to a complete result
        from arnas_ray.results import SweepResult

        assert len(SweepResult.read(out).trials) == 3


def test_a_full_disk_raised_while_closing_is_still_a_full_disk(tmp_path) -> None:
    """torch's zip writer can raise ENOSPC and then, closing, a RuntimeError of its own
    (the case CI met): the write is one ENOSPC, nothing is left behind."""
    import errno

    from arnas_common.io import atomic_write

    def write(handle) -> None:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        finally:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    target = tmp_path / "last.pt"
    with pytest.raises(OSError) as raised:
        atomic_write(target, write, binary=True)
    assert raised.value.errno == errno.ENOSPC and str(target) in str(raised.value)
    assert list(tmp_path.iterdir()) == []
