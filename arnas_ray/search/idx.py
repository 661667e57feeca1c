"""MNIST-format IDX files (LeCun et al. 1998; Fashion-MNIST, Xiao et al. 2017), located in
torchvision's raw layout or a system package's folder and parsed by torchvision's reader.

Where: ``ROOT/MNIST/raw/`` and ``ROOT/FashionMNIST/raw/`` (torchvision's layout),
each file gzipped or not; for Fashion-MNIST also Debian's
``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``)
when ``ROOT`` has none. Nothing is written: a ``.gz`` is decompressed in memory.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import torch

from arnas_common.errors import DatasetError

__all__ = ["IDX_FOLDERS", "SYSTEM_IDX_FOLDERS", "read_split"]

#: Torchvision's raw folder and class of each IDX dataset, and its download page.
IDX_FOLDERS = {
    "mnist": ("MNIST", "MNIST", "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": (
        "FashionMNIST",
        "FashionMNIST",
        "https://github.com/zalandoresearch/fashion-mnist",
    ),
}
#: Folders a system package installs the IDX files into, read when ``data_root`` has none.
SYSTEM_IDX_FOLDERS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
#: How to get each IDX dataset's files without a download: the system package.
SYSTEM_PACKAGES = {"fashion_mnist": "apt-get install dataset-fashion-mnist"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_path(name: str, root: Path, file: str) -> Path | None:
    """``file`` (or ``file.gz``) in torchvision's raw folder under ``root``, else in the
    system package's folder; ``None`` when neither has it."""
    folders = [root / IDX_FOLDERS[name][0] / "raw"]
    if name in SYSTEM_IDX_FOLDERS:
        folders.append(SYSTEM_IDX_FOLDERS[name])
    for folder in folders:
        for candidate in (folder / file, folder / f"{file}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_idx(path: Path, reader: Callable[[str], torch.Tensor]) -> torch.Tensor:
    """Parse one IDX file with torchvision's reader; a ``.gz`` is decompressed in memory
    (torchvision's reader takes a path, so it reads an anonymous in-memory file)."""
    try:
        if path.suffix != ".gz":
            return reader(str(path))
        with gzip.open(path, "rb") as handle:
            data = handle.read()
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create(path.stem)
            try:
                os.write(fd, data)
                return reader(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            plain = Path(folder) / path.stem
            plain.write_bytes(data)
            return reader(str(plain))
    except (
        OSError,
        EOFError,
        AssertionError,
        RuntimeError,
        TypeError,
        ValueError,
        KeyError,
    ) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise DatasetError(
            f"cannot read IDX file '{path}' ({reason or type(error).__name__}); it is "
            f"truncated or "
            "not an IDX file: delete it and fetch it again"
        ) from None


def read_split(
    name: str, root: Path, split: str, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``uint8`` images (N x H x W) and ``long`` labels of one split of an IDX dataset.

    Raises:
        DatasetError: files missing (the message names both ways to get them), damaged,
            or not agreeing with each other.
    """
    from torchvision.datasets.mnist import read_image_file
    from torchvision.datasets.mnist import read_label_file

    folder, cls_name, url = IDX_FOLDERS[name]
    files = _IDX_FILES[split]
    paths = [_idx_path(name, root, file) for file in files]
    if None in paths:
        missing = files[paths.index(None)]
        where = f"'{root / folder / 'raw'}'"
        get = ""
        if name in SYSTEM_IDX_FOLDERS:
            where += f" or '{SYSTEM_IDX_FOLDERS[name]}'"
            get = f"install them with: {SYSTEM_PACKAGES[name]}, or "
        raise DatasetError(
            f"{name} ({split}) not found: expected torchvision's file {missing}[.gz] in {where}; "
            f'{get}fetch them once with: python -c "import torchvision; torchvision.datasets.'
            f"{cls_name}('{root}', train={split == 'train'}, download=True)\" (or get them from "
            f"{url}), or set data_root to the folder that holds {folder}/raw"
        )
    image_path, label_path = paths
    assert image_path is not None and label_path is not None  # checked above
    images, labels = _read_idx(image_path, read_image_file), _read_idx(label_path, read_label_file)
    if len(images) != len(labels):
        raise DatasetError(
            f"'{paths[0]}' holds {len(images)} images but '{paths[1]}' {len(labels)} labels; "
            "the files belong to different sets: fetch both again"
        )
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise DatasetError(
            f"'{paths[1]}' holds labels outside 0-{num_classes - 1}; "
            "it is not a label file of this dataset: fetch it again"
        )
    return images, labels
