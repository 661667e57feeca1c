"""Final training of a sweep's networks as Ray Tune trials (``analysis.train --sweep``).

The only Ray use of ``analysis``: an optional launcher, imported lazily by
``analysis.train``. Which networks: :func:`analysis.baselines.plan_jobs`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from analysis.baselines import Job
from analysis.baselines import write_manifest
from analysis.trainer import TrainConfig
from analysis.trainer import Trainer
from arnas_common import metrics as M
from arnas_common.io import inside
from arnas_common.rayenv import keep_local_ray_on_loopback
from arnas_common.rayenv import restrict_token_file

__all__ = ["train_sweep_jobs"]


def train_sweep_jobs(
    jobs: list[Job], config: TrainConfig, out: Path, cpus: float, gpus: float
) -> None:
    """Train ``jobs`` (:func:`analysis.baselines.plan_jobs`) as Ray Tune trials under ``out``.

    Every path is absolute before Ray sees it: trials run in their own working directory.
    """
    if not os.environ.get("RAY_ADDRESS"):
        keep_local_ray_on_loopback()  # a local node on 127.0.0.1 only, set before Ray's import
    import ray
    from ray import tune

    out = out.resolve()
    config = config.replace(data_root=str(Path(config.data_root).expanduser().resolve()))
    write_manifest(jobs, out)
    configs: dict[str, tuple[Any, TrainConfig]] = {}
    for job in jobs:  # searched networks keep their skeleton, placement and width (job.spec)
        job_config = config.replace(seed=config.seed + job.seed) if job.seed else config
        configs[job.name] = (job.architecture, job_config)

    def train_one(spec: dict[str, Any]) -> None:
        torch.set_num_threads(max(1, int(cpus)))
        architecture, job_config = configs[spec["name"]]
        trainer = Trainer(job_config, architecture, spec["name"])
        trainer.run(inside(out / spec["name"], out, "network folder"), progress=False, resume=True)
        tune.report({**trainer.history[-1], "name": spec["name"]})

    class Progress(tune.Callback):
        """One line per trained network instead of Tune's tables."""

        def __init__(self) -> None:
            self.done, self.started = 0, time.monotonic()

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            self.done += 1
            elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self.started))
            print(
                f"[{elapsed}] trained {result['name']}: clean_acc {result[M.CLEAN_ACC]:.3f} "
                f"pgd_acc "
                f"{result[M.PGD_ACC]:.3f} (validation)  | done {self.done}/{len(configs)}",
                flush=True,
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(
                f"training {trial.config.get('name')} failed: see {out / 'final-training'}",
                flush=True,
            )

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Tune's legacy output at verbose 0 prints nothing
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    ray.init(
        address=os.environ.get("RAY_ADDRESS") or "local",  # never a `ray start` cluster here
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=False,
    )
    restrict_token_file()
    try:
        space = {"name": tune.grid_search(list(configs))}
        tuner = tune.Tuner(
            tune.with_resources(train_one, {"cpu": cpus, "gpu": gpus}),
            param_space=space,
            run_config=tune.RunConfig(
                name="final-training",
                storage_path=str(out),
                verbose=0,
                callbacks=[Progress()],
                failure_config=tune.FailureConfig(max_failures=2),
            ),
        )
        print(f"training {len(configs)} networks under {out}", flush=True)
        tuner.fit()
    finally:
        ray.shutdown()
