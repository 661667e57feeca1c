"""Adversarial training of discrete ARNAS networks (final training), Ray-free.

Paper protocol (Ou et al., CVPR 2024, Sec. 4.1; METHOD.md): 20 cells, 64
initial channels, auxiliary head weight 0.4, cutout 16, SGD lr 0.1 momentum 0.9
weight decay 1e-4, 200 epochs with steps (x0.1) at 50 % and 75 % of them;
PGD-AT (Madry et al. 2018: eps 8/255, 7 steps, step 0.01) or TRADES (Zhang et
al. 2019: beta 6). The kept checkpoint (``best.pt``) is chosen on a held-out
*validation* split, never on the test set; ``last.pt`` resumes training.

The command line is :mod:`analysis.train`; a sweep's networks train as Ray Tune
trials through :mod:`analysis.final_training`. Both build on this module.

Longer than 400 lines because the config, the network it builds and the resumable
loop of one training run change together.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from functools import partial
from pathlib import Path
from typing import Any
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from pydantic import model_validator
from tqdm import tqdm

from analysis.checkpoint import CHECKPOINT_KIND
from analysis.checkpoint import checkpoint_spec
from analysis.checkpoint import read_checkpoint
from arnas_common import metrics as M
from arnas_common.config_base import Bool
from arnas_common.config_base import Float
from arnas_common.config_base import Int
from arnas_common.dotted import diff_configs
from arnas_common.errors import CheckpointError
from arnas_common.io import atomic_write
from arnas_common.io import atomic_write_text
from arnas_ray.search import NonFiniteError
from arnas_ray.search import resolve_device
from arnas_ray.search.attacks import frozen_parameters
from arnas_ray.search.attacks import logits_of
from arnas_ray.search.attacks import pgd
from arnas_ray.search.attacks import trades_examples
from arnas_ray.search.config import AttackConfig
from arnas_ray.search.config import DataConfig
from arnas_ray.search.config import Eps
from arnas_ray.search.config import check_batch_size
from arnas_ray.search.data import DatasetInfo
from arnas_ray.search.data import augment_batch
from arnas_ray.search.data import dataset_info
from arnas_ray.search.data import make_loader
from arnas_ray.search.data import make_splits
from arnas_ray.search.run_config import RUNTIME_ONLY_KEYS
from search_spaces import genotypes
from search_spaces.config import RobustPlacement
from search_spaces.genotype import Genotype
from search_spaces.network import Network
from search_spaces.network import count_parameters
from search_spaces.spec import NetworkSpec

__all__ = ["SMOKE_TEST", "TrainConfig", "Trainer", "check_resumable", "resolve_genotype"]

SMOKE_TEST = {
    "epochs": 1,
    "steps_per_epoch": 2,
    "data_limit": 200,
    "val_limit": 16,
    "layers": 5,
    "init_channels": 8,
    "batch_size": 16,
}


class TrainConfig(DataConfig, RobustPlacement):
    """Final adversarial training of one network (paper values as defaults).

    Data, seed and device keys are :class:`~arnas_ray.search.DataConfig`'s and the
    robust-cell placement is :class:`~search_spaces.config.RobustPlacement`'s: the
    same keys, bounds and meaning as in a search.
    """

    method: Literal["pgd_at", "trades"] = Field(
        "pgd_at", description="pgd_at (Madry et al.) | trades (Zhang et al.)"
    )
    trades_beta: Float = Field(6.0, ge=0.0, description="TRADES beta")
    epochs: Int = Field(200, ge=1, description="training epochs")
    steps_per_epoch: Int | None = Field(None, ge=1, description="cap on steps per epoch")
    batch_size: Int = Field(128, ge=1, description="batch size")
    lr: Float = Field(0.1, gt=0.0, description="SGD learning rate")
    momentum: Float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: Float = Field(1e-4, ge=0.0, description="SGD weight decay")
    lr_milestones: tuple[Float, ...] = Field(
        (0.5, 0.75), description="lr x0.1 at these fractions of epochs"
    )
    grad_clip: Float = Field(5.0, gt=0.0, description="max gradient norm")
    layers: Int = Field(20, ge=3, le=100, description="cells")
    init_channels: Int = Field(64, ge=2, le=2048, description="initial channels")
    stem_multiplier: Int = Field(
        3,
        ge=1,
        le=16,
        description="stem channels = stem_multiplier * init_channels (searched networks keep "
        "theirs)",
    )
    auxiliary: Bool = Field(True, description="auxiliary head")
    auxiliary_weight: Float = Field(0.4, ge=0.0, description="auxiliary loss weight")
    drop_path_prob: Float = Field(0.0, ge=0.0, lt=1.0, description="drop-path probability")
    cutout: Int = Field(16, ge=0, description="cutout length (0 = off)")
    attack: AttackConfig = Field(
        default_factory=lambda: AttackConfig(step_size=0.01),
        description="PGD of training {eps, step_size, steps, random_start} (Madry et al.: "
        "8/255, 0.01, 7)",
    )
    val_attack_step_size: Eps = Field(
        2 / 255, description="validation PGD step (eps = attack.eps)"
    )
    val_attack_steps: Int = Field(10, ge=1, description="validation PGD steps")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.method != "trades" and self.trades_beta != 6.0:
            raise ValueError(
                f"trades_beta ({self.trades_beta:g}) applies to method trades only, not "
                f"{self.method}; remove it or set method: trades"
            )
        check_batch_size(self, self.batch_size, train_portion=1.0)
        return self


def final_spec(
    architecture: Genotype | NetworkSpec, config: TrainConfig, info: DatasetInfo
) -> NetworkSpec:
    """The network final training builds: a searched spec keeps its skeleton and robust
    placement (a genotype takes ``config``'s), resized to ``config.layers`` x
    ``config.init_channels``, with ``config``'s head and the dataset's classes, channels and
    normalisation."""
    if isinstance(architecture, Genotype):
        architecture = NetworkSpec(
            architecture,
            stem_multiplier=config.stem_multiplier,
            robust_start=config.robust_start,
            robust_width=config.robust_width,
        )
    return architecture.resized(layers=config.layers, init_channels=config.init_channels).replace(
        auxiliary=config.auxiliary,
        drop_path_prob=config.drop_path_prob,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        input_mean=info.mean,
        input_std=info.std,
    )


def _save(state: dict[str, Any], handle: Any) -> None:
    torch.save(state, handle)


def check_resumable(
    state: dict[str, Any], config: TrainConfig, spec: NetworkSpec, path: Path
) -> None:
    """Refuse to resume a checkpoint of another config or network (runtime-only keys, where
    it runs and where its data lies, may differ)."""
    saved = state.get("config")
    changed = diff_configs(
        saved if isinstance(saved, dict) else {}, config.to_dict(), ignore=RUNTIME_ONLY_KEYS
    )
    if changed or checkpoint_spec(state) != spec:
        raise CheckpointError(
            f"'{path}' belongs to another config or network (changed: "
            f"{', '.join(changed) or 'network'}); use another --out or the same config"
        )


def resolve_genotype(spec: str) -> tuple[str, Genotype]:
    """A registered genotype name or a genotype JSON file."""
    path = Path(spec)
    if path.suffix == ".json" or path.exists():
        return path.stem, Genotype.load(path)
    return spec, genotypes.get(spec)


def _cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    if length <= 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator).tolist()
    cx = torch.randint(0, w, (n,), generator=generator).tolist()
    out = x.clone()
    for i in range(n):
        out[
            i,
            :,
            max(cy[i] - length // 2, 0) : cy[i] + length // 2,
            max(cx[i] - length // 2, 0) : cx[i] + length // 2,
        ] = 0
    return out


class Trainer:
    """Owns one final-training run; resumable from ``last.pt``."""

    def __init__(
        self, config: TrainConfig, architecture: Genotype | NetworkSpec, name: str = "network"
    ) -> None:
        """``architecture``: a genotype (placed and sized by ``config``) or a searched
        network's :class:`~search_spaces.spec.NetworkSpec` (its skeleton and placement kept,
        resized to ``config``'s cells and channels)."""
        self.config, self.name = config, name
        self.device = resolve_device(config.device)
        self.info = dataset_info(config.dataset, config.image_size)
        torch.manual_seed(config.seed)
        self.splits = make_splits(
            config.dataset,
            config.data_root,
            seed=config.seed,
            train_portion=1.0,
            val_fraction=config.val_fraction,
            limit=config.data_limit,
            image_size=config.image_size,
        )
        self.train_set = self.splits.train  # every non-validation image
        self.spec = final_spec(architecture, config, self.info)
        self.genotype = self.spec.genotype
        self.model = Network.from_spec(self.spec, device=self.device)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        milestones = sorted({max(1, int(round(f * config.epochs))) for f in config.lr_milestones})
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones, gamma=0.1
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        self.best: tuple[float, ...] | None = None
        self.history: list[dict[str, Any]] = []

    def _autocast(self):
        if self.config.precision == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _forward(self, x):
        with self._autocast():
            return self.model(x)

    def train_epoch(self, progress: bool = False) -> dict[str, Any]:
        cfg, model = self.config, self.model
        start = time.perf_counter()
        steps = math.ceil(len(self.train_set) / cfg.batch_size)
        steps = min(steps, cfg.steps_per_epoch or steps)
        order = torch.randperm(
            len(self.train_set),
            generator=torch.Generator().manual_seed(cfg.seed * 7919 + self.epoch),
        )
        loader = make_loader(
            self.train_set,
            cfg.batch_size,
            self.device,
            order=order[: steps * cfg.batch_size].tolist(),
        )
        total, correct, seen = 0.0, 0, 0
        for x, y in tqdm(
            loader, total=steps, leave=False, disable=not progress, desc=f"epoch {self.epoch + 1}"
        ):
            x = augment_batch(x, self.generator, flip=self.info.flip)
            x = _cutout(x, cfg.cutout, self.generator).to(self.device)
            y = y.to(self.device)
            model.eval()  # attack generation without BN statistics updates
            with frozen_parameters(model):
                if cfg.method == "trades":
                    x_adv = trades_examples(
                        self._forward, x, cfg.attack.eps, cfg.attack.step_size, cfg.attack.steps
                    )
                else:
                    x_adv = pgd(
                        self._forward,
                        x,
                        y,
                        cfg.attack.eps,
                        cfg.attack.step_size,
                        cfg.attack.steps,
                        random_start=cfg.attack.random_start,
                    )
            model.train()
            self.optimizer.zero_grad(set_to_none=True)
            if cfg.method == "trades":
                out_clean, out_adv = self._forward(x), self._forward(x_adv)
                logits = logits_of(out_clean)
                loss = F.cross_entropy(logits, y) + cfg.trades_beta * F.kl_div(
                    F.log_softmax(logits_of(out_adv), 1),
                    F.softmax(logits, 1),
                    reduction="batchmean",
                )
                out = out_clean
            else:
                out = self._forward(x_adv)
                logits = logits_of(out)
                loss = F.cross_entropy(logits, y)
            if isinstance(out, tuple):
                loss = loss + cfg.auxiliary_weight * F.cross_entropy(out[1].float(), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteError(
                    f"training loss became {value} at epoch {self.epoch + 1}; lower lr"
                )
            total += value * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        self.scheduler.step()
        self.epoch += 1
        row = {
            M.EPOCH: self.epoch,
            M.TRAIN_LOSS: total / seen,
            M.TRAIN_ACC: correct / seen,
            **self.validate(),
            M.EPOCH_TIME_S: time.perf_counter() - start,
        }
        self.history.append(row)
        key = (row[M.PGD_ACC], row[M.CLEAN_ACC])
        if self.best is None or key > self.best:
            self.best = key
            row["selected"] = True
        return row

    def validate(self) -> dict[str, float]:
        cfg, val = self.config, self.splits.val
        n = min(len(val), cfg.val_limit or len(val))
        loader = make_loader(val, 256, self.device, order=range(n))
        self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        clean = adv = 0
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            with torch.no_grad():
                clean += int((logits_of(self._forward(x)).argmax(1) == y).sum())
            with frozen_parameters(self.model):
                x_adv = pgd(
                    self._forward,
                    x,
                    y,
                    cfg.attack.eps,
                    cfg.val_attack_step_size,
                    cfg.val_attack_steps,
                    generator=generator,
                )
            with torch.no_grad():
                adv += int((logits_of(self._forward(x_adv)).argmax(1) == y).sum())
        self.model.train()
        return {M.CLEAN_ACC: clean / n, M.PGD_ACC: adv / n}

    def state(self, full: bool) -> dict[str, Any]:
        state = {
            "kind": CHECKPOINT_KIND,
            "format": 1,
            "name": self.name,
            "genotype": self.genotype.to_json(),
            "network": self.spec.to_dict(),
            "dataset": self.config.dataset,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "epoch": self.epoch,
            "history": json.loads(json.dumps(self.history)),
            "params": count_parameters(self.model),
        }
        if full:
            state.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                rng={"torch": torch.get_rng_state(), "augment": self.generator.get_state()},
                best=list(self.best) if self.best else None,
            )
        return state

    def run(self, out: Path, progress: bool = True, resume: bool = False) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        last = out / "last.pt"
        if resume and last.exists():
            state = read_checkpoint(last, self.device, full=True)
            check_resumable(state, self.config, self.spec, last)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"]["torch"])
            self.generator.set_state(state["rng"]["augment"])
            self.epoch, self.history = state["epoch"], state["history"]
            self.best = tuple(state["best"]) if state["best"] else None
        while self.epoch < self.config.epochs:
            row = self.train_epoch(progress)
            if row.get("selected"):
                best = self.state(full=False)
                atomic_write(out / "best.pt", partial(_save, best), binary=True)
            full = self.state(full=True)
            atomic_write(last, partial(_save, full), binary=True)
            atomic_write_text(
                out / "history.jsonl", "".join(json.dumps(r) + "\n" for r in self.history)
            )
            if progress:
                print(
                    f"[{self.name}] epoch {row[M.EPOCH]}/{self.config.epochs}: loss "
                    f"{row[M.TRAIN_LOSS]:.3f} "
                    f"val clean {row[M.CLEAN_ACC]:.3f} pgd {row[M.PGD_ACC]:.3f}"
                    + (" *" if row.get("selected") else "")
                )
        return out / "best.pt"
