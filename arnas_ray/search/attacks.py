"""L-infinity adversarial attacks in [0, 1] pixel space.

FGSM (Goodfellow et al., ICLR 2015), PGD with random start (Madry et al.,
ICLR 2018), used alike by the search (Ou et al., CVPR 2024, Sec. 3.2: PGD-7,
eps 8/255, step 2/255), final adversarial training and evaluation, and
the TRADES inner maximisation (Zhang et al., ICML 2019) of final training.

The attacks differentiate with respect to the input only
(``torch.autograd.grad``), so nothing leaks into the ``.grad`` of model
weights, and the weight-gradient half of each backward pass is skipped. The
caller chooses the model's mode (``train()`` or ``eval()``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fgsm", "frozen_parameters", "logits_of", "pgd", "trades_examples"]


def logits_of(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The main logits of a model output (drops auxiliary logits), upcast from
    half precision so losses are computed in at least fp32."""
    logits = output[0] if isinstance(output, tuple) else output
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


@contextlib.contextmanager
def frozen_parameters(model: object) -> Iterator[None]:
    """Temporarily stop ``model``'s parameters from requiring gradients.

    Attacks need gradients with respect to the input only; with frozen
    parameters autograd records no weight-gradient bookkeeping at all (about a
    quarter faster per PGD step on CPU, identical results). A no-op for
    callables that are not modules.
    """
    params = (
        [p for p in model.parameters() if p.requires_grad] if isinstance(model, nn.Module) else []
    )
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _input_gradient(model: Model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(logits_of(model(x)), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


#: Anything that maps images to logits (or ``(logits, aux)``): a module or a wrapper of one.
Model = Callable[[torch.Tensor], Any]


def pgd(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent on the cross-entropy, L-inf ball of radius ``eps``.

    Args:
        model: maps images in [0, 1] to logits (or ``(logits, aux)``).
        x, y: clean images in [0, 1] and labels.
        eps, step_size, steps: attack budget, step and number of steps.
        random_start: start from a uniform point of the eps-ball.
        generator: random source of the start (``None`` = global RNG).

    Returns:
        Detached adversarial images, within ``eps`` of ``x`` and inside [0, 1].
    """
    with frozen_parameters(model):
        return _pgd(model, x, y, eps, step_size, steps, random_start, generator)


def _pgd(model, x, y, eps, step_size, steps, random_start, generator) -> torch.Tensor:
    x = x.detach()
    if eps == 0:  # the eps-ball is the point itself: no model passes needed
        return x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = (x + (2 * noise - 1) * eps).clamp(0.0, 1.0)
    else:
        x_adv = x.clone()
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
    return x_adv.detach()


def fgsm(model: Model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: one signed step of size ``eps``, kept in [0, 1]."""
    x = x.detach()
    with frozen_parameters(model):
        return (x + eps * _input_gradient(model, x, y).sign()).clamp(0.0, 1.0).detach()


def trades_examples(
    model: Model,
    x: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TRADES inner maximisation (Zhang et al., ICML 2019): ascend KL(model(x') || model(x))
    from ``x + 0.001 N(0, 1)`` inside the L∞ ball of radius ``eps``."""
    with torch.no_grad():
        p_clean = F.softmax(logits_of(model(x)), dim=1)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_adv = (x + 0.001 * noise).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.kl_div(F.log_softmax(logits_of(model(x_adv)), dim=1), p_clean, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = torch.min(
            torch.max(x_adv.detach() + step_size * grad.sign(), x - eps), x + eps
        ).clamp(0, 1)
    return x_adv.detach()
