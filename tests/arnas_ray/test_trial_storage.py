"""Trial storage off the driver's disk: checked before Ray starts, used by Tune for every
checkpoint (an S3-compatible server, moto, started on loopback by the test), resumed from
after the driver is killed, and required on a cluster whose nodes do not share --out."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress as _suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arnas_common.errors import ConfigError
from arnas_ray.results import SweepResult
from arnas_ray.results import TrialStatus
from arnas_ray.sweep.trial_storage import check_trial_storage
from arnas_ray.sweep.trial_storage import join_storage
from tests.helpers import TINY_SWEEP_FIXED
from tests.helpers import run_sweep_cli
from tests.helpers import start_sweep_cli
from tests.helpers import write_sweep_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value",
    ["/shared/nfs/trials", "s3://bucket/prefix", "s3://b?endpoint_override=h:9&scheme=http"],
)
def test_storage_locations_tune_can_use_pass(value) -> None:
    assert check_trial_storage(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("relative/dir", "neither an absolute path nor a URI"),
        ("ftp://host/x", "neither an absolute path nor a URI"),
        ("s3:///prefix", "names no bucket"),
        ("s3://key:secret@bucket/x", "credentials do not belong"),
        ("s3://bucket/x?secret_key=abc", "secret_key would put a secret"),
    ],
)
def test_bad_storage_locations_are_one_line(value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_trial_storage(value)


def test_join_keeps_a_uris_query() -> None:
    assert join_storage("s3://b/p?scheme=http", "run", "tune") == "s3://b/p/run/tune?scheme=http"
    assert join_storage("/nfs/trials/", "run") == "/nfs/trials/run"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    uri: str
    env: dict[str, str]
    client: Any

    def keys(self, part: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket="trials")
        return [o["Key"] for page in pages for o in page.get("Contents", []) if part in o["Key"]]


@pytest.fixture
def s3():
    """moto's S3 server on a loopback port, with one bucket, for the test's lifetime."""
    import boto3

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "arnas-test",
        "AWS_SECRET_ACCESS_KEY": "arnas-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket="trials")
        uri = f"s3://trials/sweeps?endpoint_override=127.0.0.1:{port}&scheme=http"
        yield S3Server(uri, env, client)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(predicate, timeout_s: float = 300, what: str = "it") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(0.3)


@pytest.mark.slow
def test_killed_sweep_resumes_from_trial_checkpoints_in_s3(tmp_path, s3) -> None:
    from tests.arnas_ray.test_sweep import _check_consistent

    epochs = 3
    config = write_sweep_config(
        tmp_path,
        trials=3,
        max_concurrent=1,
        trial_storage=s3.uri,
        fixed={**TINY_SWEEP_FIXED, "epochs": epochs},
    )
    run = tmp_path / "run"
    proc = start_sweep_cli(["--config", str(config)], env=s3.env)
    try:
        _wait_for(lambda: s3.keys("/checkpoint_"), what="a trial checkpoint in S3")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray processes
        proc.wait()
    assert not (run / "result.json").exists() and not (run / "tune").exists()
    done = run_sweep_cli(["--config", str(config), "--resume"], env=s3.env)
    assert done.returncode == 0, done.stderr[-3000:]
    # Resumed from S3, not restarted: every trial reported each epoch once, in order.
    result = _check_consistent(run, trials=3, epochs=epochs)
    assert all(t.status is TrialStatus.FINISHED for t in result.trials)
    run_id = SweepResult.read(run).run_id
    assert f"sweeps/{run_id}/tune/tuner.pkl" in s3.keys("tuner.pkl")
    assert not (run / "tune").exists()  # nothing of Tune's on the driver's disk


def _ray(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ray")), *args]


@dataclass
class Node:
    process: subprocess.Popen

    def runs_trial(self) -> bool:
        """Whether a Tune trial's actor (``ray::ImplicitFunc``) is among the node's processes."""
        from tests.arnas_ray.test_sweep import _tree

        for pid in _tree(self.process.pid):
            try:
                if b"ImplicitFunc" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return True
            except OSError:
                continue
        return False

    def kill(self) -> None:
        with _suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)


def _private_disk_node(address: str, hidden: Path, env: dict[str, str]) -> Node:
    """A Ray worker node in its own mount namespace, where ``hidden`` is an empty tmpfs:
    it cannot see the driver's run directory, as a machine with its own disk could not."""
    script = (
        f"mount -t tmpfs tmpfs {hidden} && exec {' '.join(_ray('start'))} "
        f"--address={address} --num-cpus=1 --block --disable-usage-stats "
        f"--dashboard-agent-listen-port={_free_port()} --metrics-export-port={_free_port()}"
    )  # ports of their own: several nodes share this machine
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    return Node(process)


needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="private disks need root and unshare (mount namespaces)",
)


@pytest.fixture
def private_cluster(tmp_path, s3):
    """A head node with no CPUs (the driver's, seeing tmp_path) and a way to add worker
    nodes with private disks; every node is stopped at the end."""
    import ray

    port = _free_port()
    env = {**os.environ, **s3.env, **TOKEN_AUTH}
    head = subprocess.Popen(
        _ray(
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=0",
            "--block",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={_free_port()}",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    nodes = [Node(head)]
    address = f"{ray.util.get_node_ip_address()}:{port}"

    def add_node() -> Node:
        nodes.append(_private_disk_node(address, tmp_path, env))
        return nodes[-1]

    try:
        _wait_for(lambda: _alive(address) >= 1, 60, "the head node")
        yield address, add_node
    finally:
        for node in reversed(nodes):
            node.kill()
        # `ray start` recorded this cluster as the machine's current one; it is gone now
        current = Path("/tmp/ray/ray_current_cluster")
        with _suppress(OSError):
            if current.read_text().strip() == address:
                current.unlink()


#: Nodes started with ``ray start`` authenticate with Ray's token (as ray_cluster.yaml's do).
TOKEN_AUTH = {"RAY_AUTH_MODE": "token"}


def _alive(address: str) -> int:
    """Alive nodes of the cluster, as ``ray status`` counts them (a GCS query, no driver)."""
    try:
        done = subprocess.run(
            _ray("status", f"--address={address}"),
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **TOKEN_AUTH},
        )
    except subprocess.TimeoutExpired:
        return 0
    active = done.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return sum(" node_" in line for line in active.splitlines()) if "Active:" in done.stdout else 0


def _latest_progress(s3: S3Server) -> dict:
    """The newest checkpoint's progress.json (one trial in the bucket)."""
    import json

    keys = sorted(k for k in s3.keys("/checkpoint_") if k.endswith("/progress.json"))
    body = s3.client.get_object(Bucket="trials", Key=keys[-1])["Body"].read()
    return json.loads(body)


@pytest.mark.slow
@needs_namespaces
def test_a_cluster_whose_nodes_cannot_see_out_needs_trial_storage(tmp_path, private_cluster):
    address, add_node = private_cluster
    add_node()
    _wait_for(lambda: _alive(address) >= 2, 120, "the worker node")
    done = run_sweep_cli(
        ["--config", str(write_sweep_config(tmp_path, trials=1)), "--address", address],
        env=TOKEN_AUTH,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-3000:]
    assert "1 of the cluster's 2 nodes do not see --out" in errors[0]
    assert "trial_storage" in errors[0] and "Traceback" not in done.stderr


@pytest.mark.slow
@needs_namespaces
def test_a_trial_on_a_lost_node_resumes_on_another_from_s3(tmp_path, s3, private_cluster):
    """Each worker node has its own disk; the one running the trial is killed mid-trial:
    the trial resumes on the other node from its last checkpoint in S3, and result.json,
    the study and Tune agree."""
    from tests.arnas_ray.test_sweep import _check_consistent

    address, add_node = private_cluster
    workers = []
    for count in (2, 3):  # one at a time: two `ray start` at once on one machine collide
        workers.append(add_node())
        _wait_for(lambda n=count: _alive(address) >= n, 120, f"worker node {count - 1}")
    epochs = 8
    config = write_sweep_config(
        tmp_path,
        trials=1,
        max_concurrent=1,
        max_failures=3,
        trial_storage=s3.uri,
        fixed={**TINY_SWEEP_FIXED, "epochs": epochs, "steps_per_epoch": 4},
    )
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arnas_ray.sweep",
            "--quiet",
            "--config",
            str(config),
            "--address",
            address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **s3.env, **TOKEN_AUTH},
    )
    try:
        _wait_for(lambda: s3.keys("progress.json"), what="the trial's first checkpoint")
        running = [w for w in workers if w.runs_trial()]
        at_kill = _latest_progress(s3)["epoch"]
        assert len(running) == 1, "the trial runs on exactly one worker node"
        running[0].kill()  # its disk (and the trial's working directory) goes with it
        _, stderr = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stderr[-3000:]
    assert 1 <= at_kill < epochs  # the node was lost mid-trial
    result = _check_consistent(tmp_path / "run", trials=1, epochs=epochs)
    assert result.trials[0].status is TrialStatus.FINISHED
    resumed_at = _latest_progress(s3)["resumed_at"]
    assert resumed_at and resumed_at[0] >= at_kill, resumed_at  # from a checkpoint, not epoch 0
