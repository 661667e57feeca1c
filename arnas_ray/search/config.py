"""Configuration of one ARNAS search run.

Every number the authors hard-coded is a named field with the paper's value
as default (Ou et al., CVPR 2024, Sec. 4.1; METHOD.md): 50 epochs, batch 32,
SGD 0.025 cosine to 0.001 with momentum 0.9 and weight decay 3e-4, grad-clip
5, Adam 3e-4 (0.5, 0.999) with weight decay 1e-3 for the alphas, PGD-7 with
eps 8/255 and step 2/255, ``regularization_coefficient`` 0.1, second-order
MGDA architecture step, CIFAR-10 with ``train_portion`` 0.5.

A run is configured by one mapping: the keys of :class:`SearchConfig` and of
:class:`~search_spaces.config.SpaceConfig` (they are disjoint); the attacks are
nested :class:`AttackConfig` mappings, also reachable as dotted keys
(``train_attack.eps``), which is how a sweep samples them.

Longer than 400 lines because every key of a run, its bounds and the checks
across keys are the one place a run's configuration is defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import AfterValidator
from pydantic import Field
from pydantic import model_validator

from arnas_common.config_base import Bool
from arnas_common.config_base import Float
from arnas_common.config_base import FrozenConfig
from arnas_common.config_base import Int
from arnas_common.dotted import get_dotted
from arnas_common.dotted import nest_dotted
from arnas_common.errors import ConfigError
from arnas_common.errors import near_miss
from arnas_ray.search.mgda import Normalization
from search_spaces.config import SpaceConfig

__all__ = [
    "ArchMode",
    "AttackConfig",
    "DataConfig",
    "Eps",
    "SearchConfig",
    "check_batch_size",
    "get_dotted",
    "nest_dotted",
    "run_config_keys",
    "space_for",
    "split_run_config",
]


def _plausible_eps(value: float) -> float:
    """An attack budget above 0.25 is almost surely a pixel value meant as value/255."""
    if value > 0.25:
        raise ValueError(
            f"must be at most 0.25 for images scaled to [0, 1]; did you mean {value:g}/255 = "
            f"{value / 255:.5f}?"
        )
    return value


#: An L-inf attack budget or step in [0, 0.25] (pixel scale [0, 1]).
Eps = Annotated[float, Field(strict=True, ge=0.0), AfterValidator(_plausible_eps)]

#: Architecture-step modes: MGDA (paper) and the ablations; the one list of them.
ArchMode = Literal["mgda", "weighted", "natural", "adversarial"]

#: SpaceConfig keys that come from the dataset and may not contradict it.
DATASET_SPACE_KEYS = ("num_classes", "in_channels", "input_mean", "input_std")


class DataConfig(FrozenConfig):
    """Keys every run shares, search and final training alike: data, seed, device."""

    dataset: Literal["digits", "fashion_mnist", "mnist", "cifar10", "cifar100", "svhn"] = Field(
        "cifar10",
        description="dataset name: digits (embedded), fashion_mnist, mnist, cifar10, cifar100, "
        "svhn",
    )
    data_root: str = Field("./data", description="folder with torchvision's dataset files")
    image_size: Int | None = Field(
        None,
        ge=8,
        le=64,
        description="digits, mnist, fashion_mnist: image side after resizing "
        "(default: digits 16, the others 28)",
    )
    data_limit: Int | None = Field(
        None, ge=10, description="use only this many training images (None = all)"
    )
    val_fraction: Float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the training set held out for validation"
    )
    val_limit: Int | None = Field(
        1000, ge=1, description="validation images scored per epoch (None = all)"
    )
    seed: Int = Field(0, ge=0, description="seed of splits, initialisation, attacks, order")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16 = autocast on CUDA (finite differences stay fp32)"
    )

    @model_validator(mode="after")
    def _data_consistent(self) -> DataConfig:
        from arnas_ray.search.data import DATASETS

        resizable = [name for name, info in DATASETS.items() if info.resizable]
        if self.image_size is not None and self.dataset not in resizable:
            raise ValueError(f"image_size applies to datasets {', '.join(resizable)} only")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got '{self.device}'")
        return self


class AttackConfig(FrozenConfig):
    """One L-inf PGD attack in [0, 1] pixel space (Madry et al., ICLR 2018), as search and
    final training use it; defaults are the paper's PGD-7, eps 8/255, step 2/255."""

    eps: Eps = Field(8 / 255, description="L-inf budget")
    step_size: Eps = Field(2 / 255, description="step of each iteration")
    steps: Int = Field(7, ge=0, description="iterations (0 = clean examples)")
    random_start: Bool = Field(True, description="start from a uniform point of the eps ball")


def check_batch_size(config: DataConfig, batch_size: int, train_portion: float) -> None:
    """A batch must fit in every split it is drawn from (known before any data loads)."""
    from arnas_common.errors import DatasetError
    from arnas_ray.search.data import dataset_info
    from arnas_ray.search.data import split_sizes

    total = dataset_info(config.dataset).train_size
    try:
        _, n_train, n_search = split_sizes(
            total,
            limit=config.data_limit,
            val_fraction=config.val_fraction,
            train_portion=train_portion,
        )
    except DatasetError as error:
        raise ValueError(str(error)) from None
    smallest = min(n_train, n_search) if train_portion < 1.0 else n_train
    if batch_size > smallest:
        splits = f"train split ({n_train})" + (
            f" or search split ({n_search})" if train_portion < 1.0 else ""
        )
        raise ValueError(
            f"batch_size ({batch_size}) is larger than the {splits} of {config.dataset}; "
            "lower batch_size or raise data_limit"
        )


class SearchConfig(DataConfig):
    """Settings of an ARNAS search (everything but the search space)."""

    # data (the shared keys are DataConfig's)
    train_portion: Float = Field(
        0.5, gt=0.0, lt=1.0, description="weight-training share of the non-validation images"
    )
    val_batch_size: Int | None = Field(
        None, ge=1, description="batch size of validation scoring (None = 4 x batch_size)"
    )
    augment: Bool = Field(
        True,
        description="random crop (padding: image side / 8, 4 px on 32x32) and, where valid, flips",
    )
    num_workers: Int | None = Field(
        None, ge=0, description="DataLoader workers (None = chosen for the device)"
    )
    # schedule and weight optimiser
    epochs: Int = Field(50, ge=1, description="search epochs")
    warmup_epochs: Int = Field(
        0,
        ge=0,
        description="first epochs train the weights only (no architecture step); "
        "paper: 0. Lets a small, short search learn features before the alphas move",
    )
    warmup_validation: Bool = Field(
        True,
        description="validate after warm-up epochs too; false skips it (their alphas do not "
        "move, and on CPU validation is a large share of a short epoch): those epochs then report "
        "no clean_acc/pgd_acc",
    )
    eps_warmup_epochs: Int = Field(
        0,
        ge=0,
        description="PGD eps of training and of the search objective grows linearly "
        "from 0 over these epochs (per step); paper: 0. Validation always uses the full eps",
    )
    batch_size: Int = Field(32, ge=1, description="batch size of both the train and search batch")
    steps_per_epoch: Int | None = Field(
        None, ge=1, description="cap on steps per epoch (None = one pass over the train split)"
    )
    lr: Float = Field(0.025, gt=0.0, description="initial SGD learning rate of the weights")
    lr_min: Float = Field(0.001, ge=0.0, description="final cosine learning rate of the weights")
    momentum: Float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum of the weights")
    weight_decay: Float = Field(3e-4, ge=0.0, description="SGD weight decay of the weights")
    grad_clip: Float = Field(5.0, gt=0.0, description="max gradient norm of the weight step")
    # architecture optimiser
    arch_lr: Float = Field(3e-4, gt=0.0, description="Adam learning rate of the alphas")
    arch_betas: tuple[Float, Float] = Field((0.5, 0.999), description="Adam betas of the alphas")
    arch_weight_decay: Float = Field(1e-3, ge=0.0, description="Adam weight decay of the alphas")
    arch_mode: ArchMode = Field(
        "mgda",
        description="combination of the objectives: mgda | weighted | natural | adversarial",
    )
    arch_order: Literal["first", "second"] = Field(
        "second", description="second = DARTS unrolled step with finite-difference Hessian"
    )
    natural_weight: Float = Field(
        1.0, ge=0.0, description="weighted mode: weight of the natural gradient"
    )
    mgda_normalization: Normalization = Field(
        "none",
        description="mgda mode: gradients divided by none (paper) | l2 (||g||) | loss (L) | "
        "loss+ (L ||g||) before the min-norm point (Sener & Koltun 2018); l2 and loss make the "
        "direction independent of regularization_coefficient",
    )
    regularization_coefficient: Float = Field(
        0.1, ge=0.0, description="lambda: scale of the adversarial architecture objective"
    )
    unroll_r: Float = Field(0.01, gt=0.0, description="finite-difference radius r (r/||v||)")
    # attacks (Madry et al. 2018; the paper: PGD-7, eps 8/255, step 2/255 for both)
    train_attack: AttackConfig = Field(
        default_factory=AttackConfig,
        description="PGD of weight training {eps, step_size, steps, random_start}",
    )
    search_attack: AttackConfig = Field(
        default_factory=AttackConfig,
        description="PGD of the search batch (the adversarial architecture objective)",
    )
    val_attack_steps: Int = Field(
        10, ge=1, description="PGD steps of validation scoring (eps and step of search_attack)"
    )
    # run
    channels_last: Bool = Field(False, description="channels_last memory format (CUDA)")
    compile: Bool = Field(
        False,
        description="torch.compile the supernet (benefit unmeasured: compiling a "
        "search step took over 220 s on an H100 and minutes on CPU; see benchmarks/RESULTS.md)",
    )
    edge_impl: Literal["fused", "plain"] = Field(
        "fused",
        description="mixed-edge implementation: fused (fast) | plain (one module per "
        "operation, the authors' structure); both compute the same function",
    )
    params_layers: Int = Field(
        20, ge=3, description="cells of the network params_m is counted for"
    )
    params_channels: Int = Field(
        64, ge=2, description="initial channels of the network params_m is counted for"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs}): "
                "a search needs at least one epoch of architecture steps"
            )
        if self.natural_weight != 1.0 and self.arch_mode != "weighted":
            raise ValueError(
                f"natural_weight ({self.natural_weight:g}) applies to arch_mode weighted only, "
                f"not {self.arch_mode}; remove it or set arch_mode: weighted"
            )
        if self.mgda_normalization != "none" and self.arch_mode != "mgda":
            raise ValueError(
                f"mgda_normalization ({self.mgda_normalization}) applies to arch_mode mgda only, "
                f"not {self.arch_mode}; remove it or set arch_mode: mgda"
            )
        if self.lr_min > self.lr:
            raise ValueError(f"lr_min ({self.lr_min}) must not exceed lr ({self.lr})")
        check_batch_size(self, self.batch_size, self.train_portion)
        return self


def split_run_config(
    flat: Mapping[str, Any], where: str = "config", sources: Mapping[str, str] | None = None
) -> tuple[SearchConfig, dict[str, Any]]:
    """Split one flat mapping into a SearchConfig and the SpaceConfig keys.

    Space keys are returned as a dict: the dataset-dependent ones
    (``num_classes``, ``in_channels``, ``input_mean``, ``input_std``) are filled
    in by :func:`space_for` once the dataset is known.

    Raises:
        ConfigError: one line per unknown key or bad value of either config.
    """
    if not isinstance(flat, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys to values")
    flat = nest_dotted(flat)
    search_keys, space_keys = set(SearchConfig.model_fields), set(SpaceConfig.model_fields)
    errors, search, space = [], {}, {}
    for key, value in flat.items():
        if key in search_keys:
            search[key] = value
        elif key in space_keys:
            space[key] = value
        else:
            errors.append(
                f"{(sources or {}).get(key, where)}: unknown key '{key}'"
                f"{near_miss(key, search_keys | space_keys)}"
            )
    config = None
    try:
        config = SearchConfig.from_dict(search, where=where, sources=sources)
    except ConfigError as error:
        errors.append(str(error))
    try:
        SpaceConfig.from_dict(space, where=where, sources=sources)
    except ConfigError as error:
        errors.append(str(error))
    if errors:
        raise ConfigError("\n".join(errors))
    assert config is not None
    return config, space


def run_config_keys() -> set[str]:
    """Every key a run config may set, nested configs' keys dotted (``train_attack.eps``):
    what a sweep may sample."""
    keys = {k for k in SpaceConfig.model_fields if k not in DATASET_SPACE_KEYS}
    for name, field in SearchConfig.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, FrozenConfig):
            keys |= {f"{name}.{sub}" for sub in nested.model_fields}
        else:
            keys.add(name)
    return keys


def space_for(config: SearchConfig, space: Mapping[str, Any]) -> SpaceConfig:
    """The SpaceConfig of a run, with the dataset's classes, channels and statistics."""
    from arnas_ray.search.data import dataset_info

    info = dataset_info(config.dataset, config.image_size)
    derived = {
        "num_classes": info.num_classes,
        "in_channels": info.in_channels,
        "input_mean": info.mean,
        "input_std": info.std,
    }
    for key in DATASET_SPACE_KEYS:
        if key in space and space[key] is not None and _differs(space[key], derived[key]):
            raise ConfigError(
                f"config: '{key}' = {space[key]!r} contradicts dataset '{config.dataset}' "
                f"({derived[key]!r}); remove the key to use the dataset's value"
            )
    return SpaceConfig.from_dict({**dict(space), **derived}, where="config")


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) != len(b) or any(abs(float(x) - float(y)) > 1e-9 for x, y in zip(a, b))
    return a != b
