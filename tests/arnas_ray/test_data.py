from __future__ import annotations

import pytest
import torch

from arnas_ray.search.data import (
    augment_batch,
    dataset_info,
    load_dataset,
    make_loader,
    make_splits,
)
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
    expected = torch.stack([padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(6)])
    assert torch.equal(got, expected) and not torch.equal(got, x)
