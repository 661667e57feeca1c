"""The cluster file validates against Ray's own schema; sweeps run through --address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]


def test_cluster_file_passes_rays_schema_and_is_secure() -> None:
    from ray.autoscaler._private.util import prepare_config
    from ray.autoscaler._private.util import validate_config

    raw = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    validate_config(prepare_config(raw))
    assert raw["provider"]["type"] == "aws"
    assert any(
        t.get("node_config", {}).get("InstanceType", "").startswith("g")
        for t in raw["available_node_types"].values()
    )
    commands = raw["head_start_ray_commands"] + raw["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in commands)
    assert "--dashboard-host=127.0.0.1" in " ".join(raw["head_start_ray_commands"])
    assert "0.0.0.0" not in (ROOT / "ray_cluster.yaml").read_text()
    assert any("constraints.txt" in c for c in raw["setup_commands"])
    # the user's own checkout travels (no placeholder repository), without what is local
    assert raw["file_mounts"]["~/arnas-ray"] == "."
    assert {"**/.venv", "runs", "data"} <= set(raw["rsync_exclude"])
    assert "git clone" not in (ROOT / "ray_cluster.yaml").read_text()
    # the nodes share no disk: trial checkpoints go to a bucket
    assert "--set trial_storage=s3://" in (ROOT / "ray_cluster.yaml").read_text()


def test_local_cluster_file_passes_rays_schema_and_ships_the_checkout() -> None:
    from ray.autoscaler._private.util import prepare_config
    from ray.autoscaler._private.util import validate_config

    text = (ROOT / "ray_cluster.local.yaml").read_text()
    raw = yaml.safe_load(text)
    validate_config(prepare_config(raw))
    assert raw["provider"]["type"] == "local" and raw["provider"]["worker_ips"]
    commands = raw["head_start_ray_commands"] + raw["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in commands)
    assert "--dashboard-host=127.0.0.1" in " ".join(raw["head_start_ray_commands"])
    assert raw["file_mounts"]["~/arnas-ray"] == "."
    assert {"**/.venv", "runs", "data"} <= set(raw["rsync_exclude"])
    assert "--set trial_storage=" in text and "git clone" not in text


def test_a_broken_cluster_file_is_rejected() -> None:
    import jsonschema
    from ray.autoscaler._private.util import prepare_config
    from ray.autoscaler._private.util import validate_config

    raw = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    raw["max_workers"] = "eight"
    with pytest.raises(jsonschema.ValidationError, match="'eight' is not of type 'integer'"):
        validate_config(prepare_config(raw))


@pytest.mark.slow
def test_two_trial_sweep_on_a_local_multi_node_cluster(tmp_path) -> None:
    from ray.cluster_utils import Cluster

    from tests.arnas_ray.test_sweep import _check_consistent
    from tests.helpers import write_sweep_config

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        config = write_sweep_config(tmp_path, trials=2, scheduler={"type": "moasha"})
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "arnas_ray.sweep",
                "--quiet",
                "--config",
                str(config),
                "--address",
                cluster.address,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ),
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = _check_consistent(tmp_path / "run", trials=2)
        # MO-ASHA judged both trials at its rung (epoch 1) through the cluster's driver.
        rungs = json.loads((tmp_path / "run" / "moasha.json").read_text())["rungs"][0]
        assert len(rungs["1"]) == 2 and any(t.status == "FINISHED" for t in result.trials)
    finally:
        cluster.shutdown()
