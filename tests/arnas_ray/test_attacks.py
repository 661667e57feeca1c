from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arnas_ray.search.attacks import fgsm
from arnas_ray.search.attacks import pgd
from arnas_ray.search.attacks import trades_examples
from arnas_ray.search.data import load_dataset
from tests.helpers import train_digits_cnn


def _trained_cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    x, y = load_dataset("digits", image_size=8).tensors
    return train_digits_cnn(), x[:200], y[:200]


def test_pgd_stays_in_ball_and_box_and_raises_loss() -> None:
    model, x, y = _trained_cnn()
    clean_loss = F.cross_entropy(model(x), y)
    clean_acc = (model(x).argmax(1) == y).float().mean()
    assert clean_acc > 0.8  # the model really learned the digits
    eps = 8 / 255
    x_adv = pgd(model, x, y, eps=eps, step_size=2 / 255, steps=10)
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert F.cross_entropy(model(x_adv), y) > clean_loss
    assert (model(x_adv).argmax(1) == y).float().mean() < clean_acc


def test_no_gradient_leaks_into_weights() -> None:
    model, x, y = _trained_cnn()
    model.zero_grad(set_to_none=True)
    pgd(model, x[:8], y[:8], 8 / 255, 2 / 255, 3)
    fgsm(model, x[:8], y[:8], 8 / 255)
    assert all(p.grad is None for p in model.parameters())


def test_fgsm_equals_one_pgd_step_without_random_start() -> None:
    model, x, y = _trained_cnn()
    eps = 8 / 255
    one_step = pgd(model, x, y, eps=eps, step_size=eps, steps=1, random_start=False)
    assert torch.equal(fgsm(model, x, y, eps), one_step)


def test_random_start_is_seeded() -> None:
    model, x, y = _trained_cnn()
    a = pgd(model, x[:16], y[:16], 8 / 255, 2 / 255, 2, generator=torch.Generator().manual_seed(3))
    b = pgd(model, x[:16], y[:16], 8 / 255, 2 / 255, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_pgd_with_zero_eps_returns_the_input_without_running_the_model() -> None:
    def model(_x):
        raise AssertionError("no forward pass needed for eps = 0")

    x = torch.rand(4, 3, 8, 8)
    out = pgd(model, x, torch.zeros(4, dtype=torch.long), eps=0.0, step_size=0.1, steps=3)
    assert torch.equal(out, x) and out is not x


def test_trades_examples_stay_in_the_ball_and_raise_the_kl() -> None:
    torch.manual_seed(0)
    model = train_digits_cnn(steps=60)
    x = torch.rand(32, 3, 8, 8)
    generator = torch.Generator().manual_seed(1)
    x_adv = trades_examples(model, x, eps=0.1, step_size=0.03, steps=5, generator=generator)
    assert (
        float((x_adv - x).abs().max()) <= 0.1 + 1e-6
        and 0.0 <= float(x_adv.min())
        and float(x_adv.max()) <= 1.0
    )

    def kl(z):
        with torch.no_grad():
            return float(
                F.kl_div(F.log_softmax(model(z), 1), F.softmax(model(x), 1), reduction="sum")
            )

    start = (x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(
        0, 1
    )
    assert kl(x_adv) > 10 * kl(start)  # the inner maximisation moved far from its start
    again = trades_examples(
        model, x, eps=0.1, step_size=0.03, steps=5, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(again, x_adv)  # seeded
