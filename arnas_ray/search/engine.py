"""The ARNAS search engine: a Ray-free object that owns one search run.

One step (Ou et al., CVPR 2024, Alg. 1; METHOD.md "Search strategy"):

1. PGD examples of the training batch (L-inf, ``train_attack``) and of the search
   batch (``search_attack``) against the current supernet (train mode, as
   the authors do);
2. the architecture step (:mod:`arnas_ray.search.architect`): natural and
   ``lambda``-scaled adversarial objectives on the search batch, second-order
   gradients sharing one virtual step, combined by MGDA;
3. the weight step: cross-entropy on the PGD training examples, SGD with
   gradient clipping, cosine learning-rate schedule per epoch.

Runs identically in a notebook, the CLI (``python -m arnas_ray.search``) and a
Ray Tune trial; ``state_dict()`` holds everything needed to resume exactly.

Longer than 400 lines because one object owns the whole run state (data,
supernet, both optimisers, RNGs, checkpoints): splitting it would spread
that state over modules that must all change together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from arnas_common import metrics as M
from arnas_common.device import resolve_device
from arnas_common.dotted import diff_configs
from arnas_common.errors import CheckpointError
from arnas_common.errors import NonFiniteError
from arnas_common.io import atomic_write
from arnas_common.io import atomic_write_text
from arnas_ray.search.architect import ArchitectureStep
from arnas_ray.search.architect import make_combiner
from arnas_ray.search.attacks import frozen_parameters
from arnas_ray.search.attacks import logits_of
from arnas_ray.search.attacks import pgd
from arnas_ray.search.config import SearchConfig
from arnas_ray.search.config import space_for
from arnas_ray.search.data import Splits
from arnas_ray.search.data import augment_batch
from arnas_ray.search.data import dataset_info
from arnas_ray.search.data import make_loader
from arnas_ray.search.data import make_splits
from arnas_ray.search.run_config import RUNTIME_ONLY_KEYS
from search_spaces.config import SpaceConfig
from search_spaces.genotype import Genotype
from search_spaces.network import Network
from search_spaces.network import count_parameters
from search_spaces.spec import NetworkSpec
from search_spaces.supernet import Supernet

__all__ = ["ArnasSearch", "NonFiniteError", "alpha_statistics", "alpha_weights", "resolve_device"]

log = logging.getLogger("arnas_ray.search")

CHECKPOINT_FORMAT = 1


def _order(n: int, seed: int, epoch: int, stream: int) -> torch.Tensor:
    """The example order of one epoch: a pure function of (seed, epoch, stream)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7 + stream)
    return torch.randperm(n, generator=generator)


def alpha_statistics(alphas: Mapping[str, torch.Tensor], used: set[str]) -> dict[str, float]:
    """How decided the architecture is, over the edges of the cell types in use:
    the mean entropy of ``softmax(alpha)`` per edge (``ln(ops)`` when uniform) and
    the mean of each edge's largest softmax weight (``1/ops`` when uniform)."""
    p = torch.cat(
        [torch.softmax(a.detach().float(), dim=-1) for c, a in alphas.items() if c in used]
    )
    return {
        M.ALPHA_ENTROPY: float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean()),
        M.ALPHA_MAX_WEIGHT: float(p.max(dim=-1).values.mean()),
    }


def alpha_weights(
    alphas: Mapping[str, torch.Tensor], used: set[str]
) -> dict[str, list[list[float]]]:
    """``softmax(alpha)`` of each cell type in use: one row of operation weights per edge
    (the columns follow the space's ``primitives``), rounded to 6 digits."""
    return {
        cell: [
            [round(float(w), 6) for w in row] for row in torch.softmax(a.detach().float(), dim=-1)
        ]
        for cell, a in alphas.items()
        if cell in used
    }


#: Keys every search checkpoint holds.
CHECKPOINT_KEYS = (
    "format",
    "config",
    "space",
    "epoch",
    "model",
    "weight_optimizer",
    "arch_optimizer",
    "scheduler",
    "rng",
    "history",
)


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A search checkpoint's contents (tensors only: ``weights_only=True``), checked for shape.

    Raises:
        CheckpointError: missing, unreadable (e.g. truncated), foreign or incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at '{path}'")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated zip, foreign pickle, ...
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise CheckpointError(
            f"cannot read checkpoint '{path}' ({reason}); it may be truncated"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{path}' is not a search checkpoint of format {CHECKPOINT_FORMAT}")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(
            f"'{path}' lacks {', '.join(missing)}; it was not written by arnas_ray.search"
        )
    if not isinstance(state["epoch"], int) or state["epoch"] < 0:
        raise CheckpointError(f"'{path}' has an invalid epoch {state['epoch']!r}")
    return state


def check_checkpoint(
    state: Mapping[str, Any], config: SearchConfig, space: Mapping[str, Any]
) -> None:
    """Refuse a checkpoint of a different run (runtime-only keys may differ)."""
    changed = diff_configs(state["config"], config.to_dict(), ignore=RUNTIME_ONLY_KEYS)
    if changed or (space is not None and state["space"] != dict(space)):
        raise CheckpointError(
            "checkpoint belongs to a different configuration (changed: "
            f"{', '.join(changed) or 'search space'}); use another --out or the same config"
        )


class ArnasSearch:
    """One ARNAS search run.

    Args:
        config: search settings.
        space: the search space, or its keys (dataset-dependent keys are filled
            from the dataset); ``None`` = the paper's space.
        splits: pre-built data splits (``None`` = built from ``config``).

    Example (a few seconds on CPU):

    >>> from arnas_ray.search import ArnasSearch, SearchConfig
    >>> cfg = SearchConfig(dataset="digits", image_size=8, data_limit=80, epochs=1,
    ...                    batch_size=8, steps_per_epoch=1, val_limit=8,
    ...                    train_attack={"steps": 1}, search_attack={"steps": 1},
    ...                    val_attack_steps=1)
    >>> search = ArnasSearch(cfg, {"layers": 3, "init_channels": 2, "nodes": 2})
    >>> sorted(search.train_epoch())[:3]
    ['adversarial_arch_loss', 'alpha_entropy', 'alpha_max_weight']
    """

    def __init__(
        self,
        config: SearchConfig,
        space: SpaceConfig | Mapping[str, Any] | None = None,
        *,
        splits: Splits | None = None,
    ) -> None:
        self.config = config
        self.space = space if isinstance(space, SpaceConfig) else space_for(config, space or {})
        self.device = resolve_device(config.device)
        self.info = dataset_info(config.dataset, config.image_size)
        if config.precision == "bf16" and self.device.type != "cuda":
            log.warning("precision=bf16 applies to CUDA only; running fp32 on %s", self.device)
        self._bf16 = config.precision == "bf16" and self.device.type == "cuda"
        torch.manual_seed(config.seed)
        self.splits = splits or make_splits(
            config.dataset,
            config.data_root,
            seed=config.seed,
            train_portion=config.train_portion,
            val_fraction=config.val_fraction,
            limit=config.data_limit,
            image_size=config.image_size,
        )
        self.model = Supernet(self.space, device=self.device, edge_impl=config.edge_impl)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if config.compile:
            self.model.compile()
        self.weight_optimizer = torch.optim.SGD(
            self.model.weights(),
            config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.arch_optimizer = torch.optim.Adam(
            list(self.model.arch_parameters().values()),
            lr=config.arch_lr,
            betas=config.arch_betas,
            weight_decay=config.arch_weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_optimizer, T_max=config.epochs, eta_min=config.lr_min
        )
        self.architect = ArchitectureStep(
            self.model,
            self.arch_optimizer,
            make_combiner(config.arch_mode, config.natural_weight, config.mgda_normalization),
            order=config.arch_order,
            regularization_coefficient=config.regularization_coefficient,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            unroll_r=config.unroll_r,
            autocast=self._autocast,
        )
        self.augment_generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    # -- helpers -------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model(x)

    def _to_device(
        self, x: torch.Tensor, y: torch.Tensor, augment: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if augment and self.config.augment:
            x = augment_batch(x, self.augment_generator, flip=self.info.flip)
        x = x.to(self.device, non_blocking=True)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _check_finite(self, name: str, value: float) -> float:
        if not math.isfinite(value):
            raise NonFiniteError(
                f"{name} became {value} at epoch {self.epoch}; lower lr / arch_lr or "
                "regularization_coefficient, or use precision=fp32"
            )
        return value

    @property
    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    # -- one step ------------------------------------------------------------------
    def step(
        self,
        train_batch: tuple[torch.Tensor, torch.Tensor],
        search_batch: tuple[torch.Tensor, torch.Tensor] | None,
        eps_scale: float = 1.0,
    ) -> dict[str, float]:
        """One search step on a training and a search batch (already on device).

        Args:
            search_batch: ``None`` = a warm-up step: weights only, no architecture step.
            eps_scale: factor on the PGD eps and step of training and search (eps warm-up).
        """
        cfg, model = self.config, self.model
        (x, y) = train_batch
        model.train()
        needs_adv = (
            search_batch is not None and "adversarial" in self.architect.combiner.objectives
        )
        with frozen_parameters(model):  # self._forward is not a module: freeze here
            train, search = cfg.train_attack, cfg.search_attack
            x_adv = pgd(
                self._forward,
                x,
                y,
                eps_scale * train.eps,
                eps_scale * train.step_size,
                train.steps,
                random_start=train.random_start,
            )
            xs_adv = (
                pgd(
                    self._forward,
                    search_batch[0],  # type: ignore[index]  # needs_adv implies a search batch
                    search_batch[1],  # type: ignore[index]
                    eps_scale * search.eps,
                    eps_scale * search.step_size,
                    search.steps,
                    random_start=search.random_start,
                )
                if needs_adv
                else None
            )
        info = None
        if search_batch is not None:
            info = self.architect.step(
                (x_adv, y), search_batch, xs_adv, self.lr, self.weight_optimizer
            )
        self.weight_optimizer.zero_grad(set_to_none=True)
        logits = self._forward(x_adv)
        logits = logits_of(logits)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.weights(), cfg.grad_clip)
        self.weight_optimizer.step()
        out = {
            "loss": self._check_finite(M.TRAIN_LOSS, float(loss.detach())),
            "correct": float((logits.argmax(1) == y).sum()),
            "n": float(len(y)),
        }
        if info is not None:
            out["gamma"] = info.weights.get("natural", 0.0)
            for objective, value in info.losses.items():
                out[f"{objective}_arch_loss"] = self._check_finite(f"{objective}_arch_loss", value)
        return out

    def eps_scale(self, step: int) -> float:
        """Factor on the PGD eps at ``step`` of the current epoch (1 after the eps warm-up)."""
        ramp = self.config.eps_warmup_epochs * self.steps_per_epoch()
        if ramp == 0:
            return 1.0
        return min(1.0, (self.epoch * self.steps_per_epoch() + step + 1) / ramp)

    @property
    def warming_up(self) -> bool:
        """Whether the current epoch trains the weights only (``warmup_epochs``)."""
        return self.epoch < self.config.warmup_epochs

    # -- epochs --------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        steps = math.ceil(len(self.splits.train) / self.config.batch_size)
        return min(steps, self.config.steps_per_epoch or steps)

    def _loaders(self):
        cfg, steps = self.config, self.steps_per_epoch()
        n = steps * cfg.batch_size
        train_order = _order(len(self.splits.train), cfg.seed, self.epoch, 0)[:n]
        search_order = _order(len(self.splits.search), cfg.seed, self.epoch, 1)
        search_order = search_order.repeat(math.ceil(n / len(search_order)))[:n]

        def loader(dataset, order: torch.Tensor):
            return make_loader(
                dataset,
                cfg.batch_size,
                self.device,
                order=order.tolist(),
                num_workers=cfg.num_workers,
            )

        return loader(self.splits.train, train_order), loader(self.splits.search, search_order)

    def train_epoch(
        self, progress: Callable[[int, dict[str, float]], None] | None = None
    ) -> dict[str, Any]:
        """Run one epoch of search steps, then validate; returns the epoch's metrics."""
        start = time.perf_counter()
        totals: dict[str, float] = {}
        gammas: list[float] = []
        train_loader, search_loader = self._loaders()
        warming_up = self.warming_up
        for i, (train, search) in enumerate(zip(train_loader, search_loader)):
            search_batch = None if warming_up else self._to_device(search[0], search[1], True)
            out = self.step(
                self._to_device(train[0], train[1], True), search_batch, self.eps_scale(i)
            )
            if "gamma" in out:
                gammas.append(out.pop("gamma"))
            weight = out["n"]
            for key, value in out.items():
                totals[key] = totals.get(key, 0.0) + (
                    value if key in ("n", "correct") else value * weight
                )
            if progress is not None:
                progress(i, out)
        lr = self.lr
        self.scheduler.step()
        n = totals.pop("n")
        metrics: dict[str, Any] = {
            M.EPOCH: self.epoch + 1,
            M.LR: lr,
            M.TRAIN_LOSS: totals.pop("loss") / n,
            M.TRAIN_ACC: totals.pop("correct") / n,
            M.WARMUP: warming_up,
            M.TRAIN_EPS: self.eps_scale(self.steps_per_epoch() - 1) * self.config.train_attack.eps,
            # No architecture steps in a warm-up epoch: no MGDA weight to report.
            M.MGDA_GAMMA_MEAN: sum(gammas) / len(gammas) if gammas else None,
            M.MGDA_GAMMA_MIN: min(gammas, default=None),
            M.MGDA_GAMMA_MAX: max(gammas, default=None),
        }
        metrics.update({key: value / n for key, value in totals.items()})
        if warming_up and not self.config.warmup_validation:
            metrics.update(dict.fromkeys((M.CLEAN_ACC, M.CLEAN_LOSS, M.PGD_ACC, M.PGD_LOSS)))
        else:
            metrics.update(self.evaluate())
        genotype = self.genotype()
        used = set(self.model.cell_types())
        metrics.update(alpha_statistics(self.model.arch_parameters(), used))
        metrics[M.ALPHAS] = json.dumps(alpha_weights(self.model.arch_parameters(), used))
        spec = self.network_spec(genotype)
        with torch.device("meta"):
            metrics[M.PARAMS_M] = count_parameters(Network.from_spec(spec)) / 1e6
        metrics[M.NETWORK] = json.dumps(spec.to_dict())
        metrics[M.GENOTYPE] = genotype.to_json()
        for key in (M.CLEAN_LOSS, M.PGD_LOSS, M.TRAIN_LOSS):
            if metrics[key] is not None:
                self._check_finite(key, metrics[key])
        self.epoch += 1
        metrics[M.EPOCH_TIME_S] = time.perf_counter() - start
        self.history.append(metrics)
        return metrics

    def evaluate(self) -> dict[str, float]:
        """Clean and PGD accuracy and loss of the supernet on the validation split."""
        cfg, model = self.config, self.model
        val = self.splits.val
        n = min(len(val), cfg.val_limit or len(val))
        loader = make_loader(
            val,
            cfg.val_batch_size or 4 * cfg.batch_size,
            self.device,
            order=range(n),
            num_workers=cfg.num_workers,
        )
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 7919 * self.epoch)
        sums = dict.fromkeys((M.CLEAN_ACC, M.CLEAN_LOSS, M.PGD_ACC, M.PGD_LOSS), 0.0)
        was_training = model.training
        model.eval()
        try:
            for x, y in loader:
                x, y = self._to_device(x, y, augment=False)
                with torch.no_grad():
                    logits = logits_of(self._forward(x))
                with frozen_parameters(model):
                    x_adv = pgd(
                        self._forward,
                        x,
                        y,
                        cfg.search_attack.eps,
                        cfg.search_attack.step_size,
                        cfg.val_attack_steps,
                        generator=generator,
                    )
                with torch.no_grad():
                    adv_logits = logits_of(self._forward(x_adv))
                sums[M.CLEAN_ACC] += float((logits.argmax(1) == y).sum())
                sums[M.CLEAN_LOSS] += float(F.cross_entropy(logits, y, reduction="sum"))
                sums[M.PGD_ACC] += float((adv_logits.argmax(1) == y).sum())
                sums[M.PGD_LOSS] += float(F.cross_entropy(adv_logits, y, reduction="sum"))
        finally:
            model.train(was_training)
        return {
            **{key: value / n for key, value in sums.items()},
            M.VAL_EPS: cfg.search_attack.eps,
            M.VAL_PGD_STEPS: cfg.val_attack_steps,
            M.VAL_EXAMPLES: n,
        }

    def genotype(self) -> Genotype:
        return self.model.genotype()

    def derived_parameters(self, genotype: Genotype) -> int:
        """Parameters of the network derived from ``genotype`` at the
        ``params_layers`` x ``params_channels`` size (built on the meta device)."""
        with torch.device("meta"):
            net = Network.from_spec(self.network_spec(genotype))
        return count_parameters(net)

    def network_spec(self, genotype: Genotype) -> NetworkSpec:
        """The discrete network of ``genotype`` in this search's space, at the
        ``params_layers`` x ``params_channels`` size ``params_m`` counts (final training
        resizes the same record)."""
        return NetworkSpec.from_space(genotype, self.space).resized(
            layers=self.config.params_layers, init_channels=self.config.params_channels
        )

    # -- state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: tensors and plain data only."""
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "augment": self.augment_generator.get_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "space": self.space.to_dict(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng,
            "history": json.loads(json.dumps(self.history)),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; refuses one from a different run."""
        check_checkpoint(state, self.config, self.space.to_dict())
        self.model.load_state_dict(state["model"])
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.augment_generator.set_state(state["rng"]["augment"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` atomically (temporary file, fsync, rename)."""
        state = self.state_dict()
        return atomic_write(path, lambda handle: torch.save(state, handle), binary=True)

    def load_checkpoint(self, path: str | Path) -> None:
        self.load_state_dict(read_checkpoint(path, self.device))

    # -- whole runs ----------------------------------------------------------------
    def write_outputs(self, out_dir: str | Path) -> None:
        """``metrics.jsonl`` (one line per epoch) and ``genotype.json``, atomically."""
        out = Path(out_dir)
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        atomic_write_text(out / "metrics.jsonl", lines)
        self.genotype().save(out / "genotype.json")
