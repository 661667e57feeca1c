"""Datasets, deterministic splits and loaders.

Real datasets only: CIFAR-10, CIFAR-100 and SVHN from a local folder in
torchvision's on-disk format; MNIST and Fashion-MNIST (Xiao et al., 2017) from
torchvision's raw IDX files (``ROOT/MNIST/raw/``, ``ROOT/FashionMNIST/raw/``,
gzipped or not; Fashion-MNIST also from Debian's ``dataset-fashion-mnist``
package), one grayscale channel, optionally resized; and ``digits``,
scikit-learn's 1,797 real handwritten 8x8 digit images (shipped inside the
scikit-learn wheel, so the default run needs no download), scaled to [0, 1],
resized and repeated to three channels. Every image tensor is in [0, 1] pixel
space; normalisation happens inside the models.

Longer than 400 lines because every dataset's metadata, loading, resizing, splits,
loaders and augmentation are one contract: what an image and a split are.

>>> from arnas_ray.search.data import load_dataset
>>> ds = load_dataset("digits", split="train")
>>> x, y = ds[0]
>>> tuple(x.shape), float(x.min()) >= 0.0, float(x.max()) <= 1.0
((3, 16, 16), True, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import cast

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset
from torch.utils.data import Subset
from torch.utils.data import TensorDataset

from arnas_common.errors import DatasetError
from arnas_common.errors import near_miss
from arnas_ray.search import idx

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "Splits",
    "split_sizes",
    "augment_batch",
    "crop_padding",
    "dataset_info",
    "load_dataset",
    "make_loader",
    "make_splits",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    flip: bool  # horizontal flips are label-preserving
    train_size: int  # images of the official training split (digits: our fixed 80 %)
    resizable: bool = False  # held in memory, so ``image_size`` may resize it


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits", 10, 3, 16, None, None, flip=False, train_size=1438, resizable=True
    ),
    # Grayscale IDX sets; statistics of the official training images. Clothing classes are
    # mirror-symmetric (a flipped sneaker is a sneaker), digits are not.
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        10,
        1,
        28,
        (0.2860,),
        (0.3530,),
        flip=True,
        train_size=60000,
        resizable=True,
    ),
    "mnist": DatasetInfo(
        "mnist", 10, 1, 28, (0.1307,), (0.3081,), flip=False, train_size=60000, resizable=True
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        10,
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        flip=True,
        train_size=50000,
    ),
    "cifar100": DatasetInfo(
        "cifar100",
        100,
        3,
        32,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        flip=True,
        train_size=50000,
    ),
    "svhn": DatasetInfo(
        "svhn",
        10,
        3,
        32,
        (0.4377, 0.4438, 0.4728),
        (0.1980, 0.2010, 0.1970),
        flip=False,
        train_size=73257,
    ),
}

#: Fraction of ``digits`` held out as its fixed test split.
DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 20240505  # fixed, so the test split never depends on the run seed

_FOLDERS = {
    "cifar10": ("cifar-10-batches-py", "CIFAR10", "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cifar100": ("cifar-100-python", "CIFAR100", "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "svhn": ("{split}_32x32.mat", "SVHN", "http://ufldl.stanford.edu/housenumbers/"),
}


def dataset_info(name: str, image_size: int | None = None) -> DatasetInfo:
    """Metadata of dataset ``name``; ``image_size`` overrides a resizable set's size."""
    if name not in DATASETS:
        raise DatasetError(
            f"unknown dataset '{name}'{near_miss(name, DATASETS)}; "
            f"choose one of: {', '.join(DATASETS)}"
        )
    info = DATASETS[name]
    if image_size is not None and info.resizable:
        return DatasetInfo(**{**info.__dict__, "image_size": image_size})
    return info


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area averaging to shrink (28 -> 14 averages 2x2 blocks), bilinear to enlarge."""
    if x.shape[-1] == size:
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _digits(split: str, image_size: int) -> TensorDataset:
    from sklearn.datasets import load_digits  # imported lazily: 1-2 s

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    x = _resize(x, image_size).clamp(0.0, 1.0).repeat(1, 3, 1, 1).contiguous()
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(_DIGITS_SPLIT_SEED))
    n_test = int(round(DIGITS_TEST_FRACTION * len(y)))
    index = order[:n_test] if split == "test" else order[n_test:]
    return TensorDataset(x[index], y[index])


def load_dataset(
    name: str,
    root: str | os.PathLike[str] = "./data",
    split: str = "train",
    image_size: int | None = None,
    download: bool = False,
) -> Dataset:
    """A dataset of ``(image in [0, 1] as C x H x W float tensor, label)``.

    Args:
        name: ``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` or ``svhn``.
        root: folder holding torchvision's on-disk layout (ignored for digits).
        split: ``train`` or ``test``.
        image_size: digits, mnist and fashion_mnist: side length after resizing
            (default: digits 16, the others 28).
        download: let torchvision fetch missing files. Never the default.

    Raises:
        DatasetError: unknown name or split, or files missing (the message says
            where they are expected and how to get them).
    """
    info = dataset_info(name, image_size)
    if split not in ("train", "test"):
        raise DatasetError(f"dataset split must be 'train' or 'test', got '{split}'")
    if name == "digits":
        return _digits(split, info.image_size)
    if name in idx.IDX_FOLDERS:
        if download:
            import torchvision

            getattr(torchvision.datasets, idx.IDX_FOLDERS[name][1])(
                str(root), train=split == "train", download=True
            )
        images, labels = idx.read_split(name, Path(root), split, info.num_classes)
        return TensorDataset(
            _resize(images[:, None].float() / 255.0, info.image_size).clamp(0.0, 1.0).contiguous(),
            labels,
        )
    if image_size not in (None, info.image_size):
        raise DatasetError(
            f"image_size applies to digits, mnist and fashion_mnist only; {name} images are "
            f"{info.image_size}px"
        )
    import torchvision
    from torchvision import transforms

    folder, cls_name, url = _FOLDERS[name]
    cls = getattr(torchvision.datasets, cls_name)
    kwargs = {"split": split} if name == "svhn" else {"train": split == "train"}
    try:
        return cls(str(root), transform=transforms.ToTensor(), download=download, **kwargs)
    except RuntimeError as error:
        if "not found" not in str(error).lower() and "corrupt" not in str(error).lower():
            raise
        expected = Path(root) / folder.format(split=split)
        raise DatasetError(
            f"{name} ({split}) not found: expected torchvision's files at '{expected}'. "
            f'Fetch them once with: python -c "import torchvision; '
            f"torchvision.datasets.{cls_name}('{root}', "
            f"{'split=' + repr(split) if name == 'svhn' else 'train=' + str(split == 'train')}, "
            f'download=True)" (or get them from {url}), or set data_root to the folder '
            "that holds them"
        ) from None


@dataclass(frozen=True)
class Splits:
    """Disjoint subsets of the official training set: weight training, architecture
    search, validation (the test set is read by scoring alone)."""

    train: Subset[Any]
    search: Subset[Any]
    val: Subset[Any]


def split_sizes(
    total: int, *, limit: int | None, val_fraction: float, train_portion: float
) -> tuple[int, int, int]:
    """Sizes of the validation, train and search splits :func:`make_splits` cuts
    (known before any data is loaded, so configs are checked against them).

    Raises:
        DatasetError: a split would be empty.
    """
    n = min(total, limit) if limit is not None else total
    n_val = int(round(val_fraction * n))
    n_train = int(train_portion * (n - n_val))
    n_search = n - n_val - n_train
    # train_portion = 1.0 (final training) leaves the search split empty on purpose.
    if n_val < 1 or n_train < 1 or (train_portion < 1.0 and n_search < 1):
        raise DatasetError(
            f"splits of {n} examples are too small (validation {n_val}, train {n_train}, search "
            f"{n_search}); raise data_limit or change val_fraction / train_portion"
        )
    return n_val, n_train, n_search


def make_splits(
    name: str,
    root: str | os.PathLike[str] = "./data",
    *,
    seed: int = 0,
    train_portion: float = 0.5,
    val_fraction: float = 0.1,
    limit: int | None = None,
    image_size: int | None = None,
    download: bool = False,
) -> Splits:
    """Deterministic seeded splits of the official training set.

    ``val_fraction`` of the (optionally ``limit``-ed) training set becomes the
    validation split; the rest is cut into the weight-training part
    (``train_portion``, DARTS' ``train_portion = 0.5``) and the architecture
    *search* part (empty for ``train_portion = 1.0``, as in final training). The
    official test set is not read here.
    """
    full = load_dataset(name, root, "train", image_size, download)
    total = len(cast(Sized, full))  # every dataset here has a length
    n_val, n_train, _ = split_sizes(
        total,
        limit=limit,
        val_fraction=val_fraction,
        train_portion=train_portion,
    )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    if limit is not None:
        order = order[:limit]
    rest = order[n_val:]
    return Splits(
        train=Subset(full, rest[:n_train].tolist()),
        search=Subset(full, rest[n_train:].tolist()),
        val=Subset(full, order[:n_val].tolist()),
    )


def make_loader(
    dataset: Dataset,
    batch_size: int,
    device: torch.device,
    *,
    order: Sequence[int] | None = None,
    num_workers: int | None = None,
) -> DataLoader:
    """A DataLoader whose worker count and pinning suit ``device``.

    Args:
        order: the exact example order (for reproducible, resumable epochs);
            ``None`` = sequential.
        num_workers: ``None`` = 0 for in-memory tensors, else up to 4 on CUDA
            and 2 on CPU.
    """
    in_memory = isinstance(dataset, TensorDataset) or (
        isinstance(dataset, Subset) and isinstance(dataset.dataset, TensorDataset)
    )
    if num_workers is None:
        cpus = os.cpu_count() or 1
        num_workers = 0 if in_memory else min(4 if device.type == "cuda" else 2, cpus)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order) if order is not None else None,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        drop_last=False,
    )


def crop_padding(image_size: int) -> int:
    """Padding of the random crop: 4 pixels for 32x32 images (the CIFAR standard),
    scaled with the image side (1 pixel for 8x8 digits)."""
    return max(1, image_size // 8)


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, padding: int | None = None, flip: bool = True
) -> torch.Tensor:
    """Random crop with zero padding and optional horizontal flip, per example.

    Done on whole batches with an explicit generator (not in loader workers),
    so the augmentation stream is checkpointed and a resumed run sees the same
    images as an uninterrupted one.

    Args:
        padding: crop padding in pixels (``None`` = :func:`crop_padding` of the image).
    """
    n, _, h, w = x.shape
    if padding is None:
        padding = crop_padding(max(h, w))
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    # One gather for the whole batch: rows dy[i] + (0..h-1), columns dx[i] + (0..w-1).
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(
        n, x.shape[1], h, padded.shape[-1]
    )
    out = padded.gather(2, rows.to(x.device))
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols.to(x.device))
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        mask = mask.to(x.device)
        out[mask] = out[mask].flip(-1)
    return out
