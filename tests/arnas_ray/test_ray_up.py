"""``ray up ray_cluster.local.yaml`` end to end, on two machines made of namespaces.

Each machine is a network namespace with an address of its own (a veth pair joins the
two; no traffic leaves them), its own PID namespace, its own home directory and its own
sshd. The cluster file is the shipped one with the addresses, the SSH user and key
filled in, and one departure: the setup points at this test's virtual environment
instead of installing one per node (a multi-GB install). ``ray up`` brings up the head,
whose autoscaler brings up the worker over SSH; ``ray exec`` runs a smoke-test sweep
with ``--address auto``; ``ray down`` stops both.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from arnas_ray.results import SweepResult
from arnas_ray.results import TrialStatus

ROOT = Path(__file__).resolve().parents[2]
NET = "10.213.7."
TOOLS = ("ip", "unshare", "ssh", "ssh-keygen", "rsync")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0
        or not Path("/usr/sbin/sshd").exists()
        or any(shutil.which(t) is None for t in TOOLS),
        reason="needs root, sshd (openssh-server), rsync, ip and unshare",
    ),
]


def _run(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


class Machines:
    """Two namespaced machines, head (``NET.1``) and worker (``NET.2``)."""

    def __init__(self, tmp: Path) -> None:
        tag = f"{os.getpid() % 10000}"
        self.tmp = tmp
        self.names = [f"arnas-h{tag}", f"arnas-w{tag}"]
        self.ips = [f"{NET}1", f"{NET}2"]
        self.homes = [tmp / "home-head", tmp / "home-worker"]
        self.key = tmp / "id_ed25519"
        self.sshd: list[subprocess.Popen] = []

    def up(self) -> None:
        a, b = self.names
        for name in self.names:
            _run("ip", "netns", "add", name).check_returncode()
        _run(
            "ip", "link", "add", "v0", "netns", a, "type", "veth", "peer", "name", "v1", "netns", b
        ).check_returncode()
        for name, dev, ip, peer in (
            (a, "v0", self.ips[0], self.ips[1]),
            (b, "v1", self.ips[1], self.ips[0]),
        ):
            for cmd in (
                ["addr", "add", f"{ip}/24", "dev", dev],
                ["link", "set", dev, "up"],
                ["link", "set", "lo", "up"],
                ["route", "add", "default", "via", peer],
            ):
                _run("ip", "netns", "exec", name, "ip", *cmd).check_returncode()
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)).check_returncode()
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        for index, (name, ip, home) in enumerate(zip(self.names, self.ips, self.homes)):
            (home / ".ssh").mkdir(parents=True)
            shutil.copy(f"{self.key}.pub", home / ".ssh" / "authorized_keys")
            host_key = self.tmp / f"host_key_{index}"
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
            config = self.tmp / f"sshd_{index}.conf"
            config.write_text(
                f"ListenAddress {ip}\nHostKey {host_key}\nPermitRootLogin prohibit-password\n"
                f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                f"StrictModes no\nPidFile {self.tmp}/sshd_{index}.pid\n"
                f"AuthorizedKeysFile {home}/.ssh/authorized_keys\n"
            )
            # a home and a Ray state directory of its own, as a machine of its own has
            script = (
                f"mount --rbind {home} /root && mkdir -p /tmp/ray && "
                f"mount -t tmpfs tmpfs /tmp/ray && exec /usr/sbin/sshd -D -e -f {config}"
            )
            python = Path(sys.base_prefix).resolve()  # the home hides /root: keep Python seen
            if python.is_relative_to("/root"):
                inside = home / python.relative_to("/root")
                inside.mkdir(parents=True)
                script = f"mount --bind {python} {inside} && {script}"
            self.sshd.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        name,
                        "unshare",
                        "--mount",
                        "--pid",
                        "--fork",
                        "--mount-proc",
                        "sh",
                        "-c",
                        script,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        for ip in self.ips:
            self._wait_for_ssh(ip)

    def _wait_for_ssh(self, ip: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            done = self.in_head(
                "ssh",
                "-i",
                str(self.key),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                f"root@{ip}",
                "true",
                timeout=30,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd at {ip} did not answer: {done.stderr[-500:]}")
            time.sleep(0.5)

    def in_head(self, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """A command in the head's network namespace (where ``ray up`` is run from)."""
        return _run("ip", "netns", "exec", self.names[0], *args, timeout=timeout, **kw)

    def down(self) -> None:
        for process in self.sshd:  # sshd is each PID namespace's first process: all go
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=60)
        for name in self.names:
            _run("ip", "netns", "del", name)


@pytest.fixture
def machines(tmp_path):
    made = Machines(tmp_path)
    try:
        made.up()
        yield made
    finally:
        made.down()


def _cluster_file(machines: Machines, path: Path) -> Path:
    """The shipped local-provider file with this test's machines, user and key; its Ray
    commands use this test's virtual environment (no per-node install)."""
    raw = yaml.safe_load((ROOT / "ray_cluster.local.yaml").read_text())
    raw["provider"].update(head_ip=machines.ips[0], worker_ips=[machines.ips[1]])
    raw["auth"] = {"ssh_user": "root", "ssh_private_key": str(machines.key)}
    raw["min_workers"] = raw["max_workers"] = 1
    raw["cluster_name"] = f"arnas-ray-test-{os.getpid()}"  # its launcher state is removed
    raw["setup_commands"] = []
    ray = str(Path(sys.executable).with_name("ray"))
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        raw[key] = [c.replace("~/arnas-venv/bin/ray", ray) for c in raw[key]]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_ray_up_runs_a_sweep_on_a_two_machine_cluster_and_ray_down_stops_it(
    tmp_path, machines
) -> None:
    cluster = _cluster_file(machines, tmp_path / "cluster.yaml")
    launcher = tmp_path / "launcher-home"  # the user's machine: its token travels by file_mounts
    (launcher / ".ray").mkdir(parents=True)
    (launcher / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    env = {**os.environ, "HOME": str(launcher), "RAY_AUTH_MODE": "token"}
    ray = str(Path(sys.executable).with_name("ray"))

    up = machines.in_head(
        ray, "up", str(cluster), "-y", "--no-config-cache", timeout=600, cwd=ROOT, env=env
    )
    assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]
    try:
        # the checkout travelled, without what rsync_exclude leaves behind
        copy = machines.homes[0] / "arnas-ray"
        assert (copy / "arnas_ray" / "sweep" / "run.py").is_file()
        assert not (copy / ".venv").exists() and not (copy / ".git").exists()
        deadline = time.monotonic() + 240
        count = (  # a driver runs on a node: through ray exec, on the head
            f'RAY_AUTH_MODE=token {sys.executable} -c "import ray; ray.init(log_to_driver=False);'
            " print('alive', sum(n['Alive'] for n in ray.nodes()))\""
        )
        while True:  # the head's autoscaler brings the worker up over SSH
            alive = machines.in_head(
                ray, "exec", str(cluster), count, timeout=120, cwd=ROOT, env=env
            )
            if "alive 2" in alive.stdout:
                break
            assert time.monotonic() < deadline, (alive.stdout + alive.stderr)[-3000:]
            time.sleep(3)
        assert (machines.homes[1] / "arnas-ray" / "arnas_ray").is_dir()  # on the worker too
        sweep = (
            "cd ~/arnas-ray && RAY_AUTH_MODE=token PYTHONPATH=$HOME/arnas-ray "
            f"{sys.executable} -m arnas_ray.sweep --smoke-test --address auto --out ~/run "
            f"--set report=false --set trial_storage={tmp_path}/trials --quiet"
        )
        done = machines.in_head(ray, "exec", str(cluster), sweep, timeout=600, cwd=ROOT, env=env)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        run = machines.homes[0] / "run"
        result = SweepResult.read(run)
        assert len(result.trials) == 2
        assert all(t.status is TrialStatus.FINISHED for t in result.trials)
        assert (run / "study.db").is_file()
        run_id = json.loads((run / "run.json").read_text())["run_id"]
        assert (tmp_path / "trials" / run_id / "tune").is_dir()
    finally:
        down = machines.in_head(ray, "down", str(cluster), "-y", timeout=300, cwd=ROOT, env=env)
        name = yaml.safe_load(cluster.read_text())["cluster_name"]
        for leftover in (f"cluster-{name}.state", f"cluster-{name}.lock"):  # the launcher's
            Path("/tmp/ray", leftover).unlink(missing_ok=True)
    assert down.returncode == 0, (down.stdout + down.stderr)[-3000:]
