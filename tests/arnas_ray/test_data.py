from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from arnas_ray.search import idx as idx_module
from arnas_ray.search.data import augment_batch
from arnas_ray.search.data import dataset_info
from arnas_ray.search.data import load_dataset
from arnas_ray.search.data import make_loader
from arnas_ray.search.data import make_splits
from search_spaces import DatasetError


def test_digits_loads_offline_in_pixel_space() -> None:
    train = load_dataset("digits", split="train")
    test = load_dataset("digits", split="test", image_size=32)
    x, y = train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert test[0][0].shape == (3, 32, 32)
    assert len(train) + len(test) == 1797
    all_x = torch.stack([train[i][0] for i in range(len(train))])
    assert 0.0 <= float(all_x.min()) and float(all_x.max()) <= 1.0
    assert float(all_x.max()) > 0.9  # real strokes, not blank images
    assert set(int(train[i][1]) for i in range(len(train))) == set(range(10))


def test_splits_are_disjoint_deterministic_and_seeded() -> None:
    a = make_splits("digits", seed=1, limit=400)
    b = make_splits("digits", seed=1, limit=400)
    c = make_splits("digits", seed=2, limit=400)
    assert a.train.indices == b.train.indices and a.search.indices == b.search.indices
    assert a.train.indices != c.train.indices
    parts = [set(a.train.indices), set(a.search.indices), set(a.val.indices)]
    assert sum(map(len, parts)) == 400 and len(set().union(*parts)) == 400
    assert len(a.train) == len(a.search)  # train_portion 0.5


def test_missing_cifar_raises_helpful_error(tmp_path) -> None:
    with pytest.raises(DatasetError, match="cifar-10-batches-py") as info:
        load_dataset("cifar10", root=tmp_path)
    assert "torchvision.datasets.CIFAR10(" in str(info.value)  # the one-line fetch command
    with pytest.raises(DatasetError, match="test_32x32.mat"):
        load_dataset("svhn", root=tmp_path, split="test")


def test_unknown_dataset_suggests_name() -> None:
    with pytest.raises(DatasetError, match="did you mean 'cifar10'"):
        dataset_info("cifar-10")


def test_loader_and_augmentation() -> None:
    ds = load_dataset("digits")
    loader = make_loader(ds, 8, torch.device("cpu"), order=[5, 4, 3, 2, 1])
    x, y = next(iter(loader))
    assert x.shape == (5, 3, 16, 16) and int(y[0]) == int(ds[5][1])
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape


def test_crop_padding_scales_with_the_image_and_gather_equals_slicing() -> None:
    from arnas_ray.search.data import crop_padding

    assert [crop_padding(s) for s in (8, 16, 32)] == [1, 2, 4]
    x = torch.rand(6, 3, 8, 8)
    got = augment_batch(x, torch.Generator().manual_seed(5), flip=False)
    g = torch.Generator().manual_seed(5)  # the reference: one slice per example
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (6,), generator=g).tolist()
    dx = torch.randint(0, 3, (6,), generator=g).tolist()
    expected = torch.stack([padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8] for i in range(6)])
    assert torch.equal(got, expected) and not torch.equal(got, x)


# -- IDX datasets (MNIST, Fashion-MNIST) ---------------------------------------------------
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def _write_idx(
    folder: Path, split: str, images, labels, *, compress: bool, corrupt: str | None = None
) -> None:
    """IDX files in torchvision's layout: magic 0x0803 / 0x0801, big-endian sizes, uint8 data."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    n, h, w = images.shape
    image_bytes = struct.pack(">IIII", 0x0803, n, h, w) + images.numpy().astype("uint8").tobytes()
    label_bytes = (
        struct.pack(">II", 0x0801, len(labels)) + labels.numpy().astype("uint8").tobytes()
    )
    if corrupt == "truncated":
        image_bytes = image_bytes[: len(image_bytes) // 2]
    if corrupt == "magic":
        image_bytes = struct.pack(">I", 0x0E03) + image_bytes[4:]
    for name, payload in (
        (f"{prefix}-images-idx3-ubyte", image_bytes),
        (f"{prefix}-labels-idx1-ubyte", label_bytes),
    ):
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)


@pytest.fixture
def no_system_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(
        idx_module, "SYSTEM_IDX_FOLDERS", {"fashion_mnist": tmp_path / "no-such-folder"}
    )


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_parse_with_torchvision_in_its_layout(
    tmp_path, no_system_folder, compress
) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 28, 28), generator=g)
    labels = torch.arange(12) % 10
    _write_idx(tmp_path / "FashionMNIST" / "raw", "test", images, labels, compress=compress)
    ds = load_dataset("fashion_mnist", root=tmp_path, split="test")
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and int(y) == 3
    assert torch.allclose(x[0], images[3].float() / 255)
    small = load_dataset("fashion_mnist", root=tmp_path, split="test", image_size=14)
    # 28 -> 14 averages 2x2 blocks
    assert torch.allclose(
        small[3][0][0], (images[3].float() / 255).reshape(14, 2, 14, 2).mean((1, 3)), atol=1e-6
    )
    _write_idx(tmp_path / "MNIST" / "raw", "train", images, labels, compress=compress)
    assert len(load_dataset("mnist", root=tmp_path, split="train")) == 12


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [("truncated", "truncated or not an IDX file"), ("magic", "truncated or not an IDX file")],
)
def test_damaged_idx_files_are_one_clear_error(
    tmp_path, no_system_folder, corrupt, message
) -> None:
    images, labels = torch.zeros(4, 28, 28, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    _write_idx(
        tmp_path / "FashionMNIST" / "raw", "test", images, labels, compress=True, corrupt=corrupt
    )
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("fashion_mnist", root=tmp_path, split="test")
    assert "t10k-images-idx3-ubyte.gz" in str(info.value) and "\n" not in str(info.value)


def test_idx_images_and_labels_must_agree(tmp_path, no_system_folder) -> None:
    _write_idx(
        tmp_path / "MNIST" / "raw",
        "test",
        torch.zeros(5, 28, 28, dtype=torch.long),
        torch.zeros(4, dtype=torch.long),
        compress=False,
    )
    with pytest.raises(DatasetError, match="5 images but .* 4 labels"):
        load_dataset("mnist", root=tmp_path, split="test")
    _write_idx(
        tmp_path / "MNIST" / "raw",
        "test",
        torch.zeros(2, 28, 28, dtype=torch.long),
        torch.tensor([0, 11]),
        compress=False,
    )
    with pytest.raises(DatasetError, match="labels outside 0-9"):
        load_dataset("mnist", root=tmp_path, split="test")


def test_missing_idx_files_name_apt_and_torchvision(tmp_path, no_system_folder) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion_mnist", root=tmp_path, split="train")
    text = str(info.value)
    assert (
        "apt-get install dataset-fashion-mnist" in text
        and "torchvision.datasets.FashionMNIST(" in text
    )
    assert (
        str(tmp_path / "FashionMNIST" / "raw") in text
        and "download=True" in text
        and "\n" not in text
    )
    with pytest.raises(DatasetError, match=r"MNIST\('.*', train=False, download=True\)") as mnist:
        load_dataset("mnist", root=tmp_path, split="test")
    assert "apt-get" not in str(mnist.value)  # Debian ships no MNIST


def test_system_folder_is_the_fallback_and_data_root_wins(tmp_path, monkeypatch) -> None:
    system, root = tmp_path / "debian", tmp_path / "root"
    _write_idx(system, "test", torch.full((3, 28, 28), 7), torch.tensor([1, 2, 3]), compress=True)
    monkeypatch.setattr(idx_module, "SYSTEM_IDX_FOLDERS", {"fashion_mnist": system})
    assert [
        int(load_dataset("fashion_mnist", root=root, split="test")[i][1]) for i in range(3)
    ] == [1, 2, 3]
    _write_idx(
        root / "FashionMNIST" / "raw",
        "test",
        torch.zeros(2, 28, 28, dtype=torch.long),
        torch.tensor([9, 9]),
        compress=False,
    )
    assert len(load_dataset("fashion_mnist", root=root, split="test")) == 2


@pytest.mark.skipif(
    not DEBIAN_FMNIST.is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed "
    "(apt-get install dataset-fashion-mnist; .ci/run installs it)",
)
def test_real_fashion_mnist_from_the_debian_package(tmp_path) -> None:
    train = load_dataset("fashion_mnist", root=tmp_path, split="train")
    test = load_dataset("fashion_mnist", root=tmp_path, split="test", image_size=14)
    assert len(train) == 60000 and len(test) == 10000
    x, y = train.tensors
    assert x.shape == (60000, 1, 28, 28) and float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert (
        torch.bincount(y).tolist() == [6000] * 10
        and torch.bincount(test.tensors[1]).tolist() == [1000] * 10
    )
    info = dataset_info("fashion_mnist")
    assert (
        float(x.mean()) == pytest.approx(info.mean[0], abs=1e-3)
        and info.in_channels == 1
        and info.flip
    )
    assert test[0][0].shape == (1, 14, 14)
    splits = make_splits("fashion_mnist", tmp_path, seed=0, val_fraction=0.05, image_size=14)
    assert (len(splits.val), len(splits.train), len(splits.search)) == (3000, 28500, 28500)
