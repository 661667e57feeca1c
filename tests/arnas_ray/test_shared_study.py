"""Several sweep drivers on one Optuna study in a real PostgreSQL server; no secret
written anywhere; one driver per run directory; resume refuses a changed config."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from filelock import FileLock

from arnas_ray.results import SweepResult
from arnas_ray.results import TrialStatus
from arnas_ray.sweep.optuna_bridge import RUN_ID_ATTR
from arnas_ray.sweep.optuna_bridge import open_storage
from tests.helpers import run_sweep_cli
from tests.helpers import write_sweep_config

SECRET = "pw-7f3a-do-not-leak"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_binary(name: str) -> str | None:
    """A server binary on PATH, else where Debian's postgresql package keeps it (off PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _as_postgres(*command: str) -> subprocess.CompletedProcess:
    prefix = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    binary = _postgres_binary(command[0]) or command[0]
    return subprocess.run(
        [*prefix, binary, *command[1:]], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own (trust auth on 127.0.0.1), stopped afterwards; yields a
    SQLAlchemy URL whose password is :data:`SECRET` (trust auth accepts any password)."""
    if not (_postgres_binary("initdb") and _postgres_binary("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip(
            "running as root without runuser: cannot start PostgreSQL as the postgres user"
        )
    # Not under pytest's tmp folder: its parents are private to this user.
    root = Path(tempfile.mkdtemp(prefix="arnas-postgres-"))
    data, port = root / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    init = _as_postgres("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = _as_postgres(
        "pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"
    )
    assert start.returncode == 0, start.stderr + (root / "server.log").read_text()
    try:
        created = _as_postgres(
            "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "arnas"
        )
        assert created.returncode == 0, created.stderr
        yield f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{port}/arnas"
    finally:
        _as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _every_file_and(console: str, *roots: Path) -> str:
    texts = [console]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                texts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(texts)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "journal"])
def test_two_drivers_share_one_study_and_no_secret_is_written(kind, request, tmp_path) -> None:
    """Every storage a shared study may use: SQLite (one machine), a real PostgreSQL server,
    Optuna's journal file (no server; for NFS): two drivers at once, every trial in exactly
    one run directory, nothing left RUNNING, no password written."""
    if kind == "postgresql":
        postgres = request.getfixturevalue("postgres")
    elif kind == "sqlite":
        postgres = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        postgres = f"journal://{tmp_path / 'shared.log'}"
    runs = [tmp_path / "a", tmp_path / "b"]
    (tmp_path / "ca").mkdir(), (tmp_path / "cb").mkdir()
    # Driver A names the storage in its config file, driver B takes it from ARNAS_STORAGE_URL.
    config_a = write_sweep_config(
        tmp_path / "ca",
        out=str(runs[0]),
        trials=2,
        max_concurrent=1,
        storage=postgres,
        study_name="shared",
    )
    config_b = write_sweep_config(
        tmp_path / "cb", out=str(runs[1]), trials=2, max_concurrent=1, study_name="shared"
    )
    env = {**os.environ, "ARNAS_STORAGE_URL": postgres}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "arnas_ray.sweep", "--quiet", "--config", str(c)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=e,
        )
        for c, e in ((config_a, dict(os.environ)), (config_b, env))
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="shared", storage=open_storage(postgres))
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    results = [SweepResult.read(run) for run in runs]
    assert results[0].run_id != results[1].run_id
    numbers = [t.number for r in results for t in r.trials]
    assert len(numbers) == 4 and len(set(numbers)) == 4  # each trial belongs to exactly one run
    complete = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete == {
        t.number for r in results for t in r.trials if t.status is TrialStatus.FINISHED
    }
    for result in results:  # each run's trials carry its run id in the shared study
        for trial in result.trials:
            assert study.trials[trial.number].user_attrs[RUN_ID_ATTR] == result.run_id
    console = "".join(out + err for out, err in outputs)
    if kind == "postgresql":
        assert "postgres:***@" in console
        assert SECRET not in _every_file_and(console, *runs)
        assert yaml.safe_load((runs[0] / "sweep.yaml").read_text())["storage"].startswith(
            "postgresql+psycopg://postgres:***@"
        )


def test_a_second_driver_on_the_same_run_directory_is_refused(tmp_path) -> None:
    config = write_sweep_config(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    with FileLock(run / ".lock"):
        done = run_sweep_cli(["--config", str(config)])
    assert done.returncode == 2 and "another sweep driver is running" in done.stderr, done.stderr[
        -2000:
    ]
    assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


def test_missing_database_driver_is_one_line_before_ray(tmp_path) -> None:
    done = run_sweep_cli(
        [
            "--config",
            str(write_sweep_config(tmp_path)),
            "--set",
            "storage=mysql+pymysql://u:hunter2@h/db",
        ]
    )
    assert done.returncode == 2 and "needs a database driver" in done.stderr, done.stderr[-2000:]
    assert "hunter2" not in done.stderr and "u:***@h" in done.stderr
    assert not (tmp_path / "run").exists()


def test_claim_records_a_run_id_and_removes_orphan_temporaries(tmp_path) -> None:
    from arnas_ray.sweep import SweepConfig
    from arnas_ray.sweep.rundir import changed_keys
    from arnas_ray.sweep.rundir import claim

    config = SweepConfig.from_dict(yaml.safe_load(write_sweep_config(tmp_path).read_text()))
    orphan = tmp_path / "run" / "scores" / ".a.json.x1y2.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("half")
    with claim(config.out_dir, config, resume=False) as run_id:
        assert not orphan.exists()
    stored = json.loads((config.out_dir / "run.json").read_text())
    assert stored["run_id"] == run_id and stored["config"] == config.to_dict(masked=True)
    changed = changed_keys(stored["config"], config.replace(trials=6, report=True).to_dict())
    assert changed == ["trials"]  # report is runtime-only
    nested = config.replace(fixed={**config.fixed, "epochs": 5, "device": "cuda"}).to_dict()
    assert changed_keys(stored["config"], nested) == [
        "fixed.epochs"
    ]  # fixed.device is runtime-only
