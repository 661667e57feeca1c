"""Robustness scores of trained networks: clean, FGSM, PGD-20, PGD-100, AutoAttack.

Evaluation protocol of Ou et al., CVPR 2024, Sec. 4.2 (after Madry et al. and
Croce & Hein, ICML 2020): L-inf, eps 8/255, PGD step 2/255, every attack on
the same examples, the model in eval mode, fixed seeds. AutoAttack is the
authors' code through the ``pyautoattack`` package (its ``AutoAttack`` class,
``standard`` version by default: APGD-CE, APGD-T, FAB-T, Square).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pandas as pd
import torch
from torch import nn

from arnas_common import metrics as M
from arnas_common.errors import ConfigError
from arnas_common.errors import near_miss
from arnas_ray.search.attacks import fgsm
from arnas_ray.search.attacks import logits_of
from arnas_ray.search.attacks import pgd

__all__ = [
    "ATTACKS",
    "ATTACK_EXAMPLES",
    "autoattack",
    "evaluate",
    "transfer_accuracy",
]


@dataclass(frozen=True)
class AttackRun:
    """What an attack needs to make its examples of one evaluation."""

    model: nn.Module  # eval mode, returns logits
    x: torch.Tensor
    y: torch.Tensor
    eps: float
    step_size: float
    seed: int
    batch_size: int
    autoattack: Mapping[str, Any]  # version, attacks, budget
    #: what AutoAttack's own sanity checks flagged (filled by the autoattack attack)
    checks: dict[str, Any] = field(default_factory=dict)

    def batched(self, attack) -> torch.Tensor:
        return torch.cat(
            [
                attack(self.x[i : i + self.batch_size], self.y[i : i + self.batch_size])
                for i in range(0, len(self.y), self.batch_size)
            ]
        )


def _pgd_examples(steps: int):
    def run(r: AttackRun) -> torch.Tensor:
        generator = torch.Generator(device=r.x.device).manual_seed(r.seed)
        return r.batched(
            lambda a, b: pgd(r.model, a, b, r.eps, r.step_size, steps, generator=generator)
        )

    return run


#: Attack name -> how its adversarial examples are made, weakest first; the names
#: are those of ``metrics.ATTACK_METRICS`` (checked by tests/analysis/test_robustness.py).
ATTACK_EXAMPLES = {
    "clean": lambda r: r.x,
    "fgsm": lambda r: r.batched(lambda a, b: fgsm(r.model, a, b, r.eps)),
    "pgd20": _pgd_examples(20),
    "pgd100": _pgd_examples(100),
    "autoattack": lambda r: autoattack(
        r.model,
        r.x,
        r.y,
        eps=r.eps,
        seed=r.seed,
        batch_size=r.batch_size,
        checks=r.checks,
        **r.autoattack,
    ),
}
#: Attacks ``evaluate`` knows, weakest first.
ATTACKS = tuple(ATTACK_EXAMPLES)


class _Logits(nn.Module):
    """Eval-mode wrapper returning plain logits (for AutoAttack and the attacks)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(x))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return correct / max(len(y), 1)


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 8 / 255,
    version: str = "standard",
    attacks: Sequence[str] | None = None,
    budget: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
    checks: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Adversarial examples from the AutoAttack package (``pyautoattack``).

    Args:
        version: ``standard``, ``plus``, ``rand`` or ``custom`` (then ``attacks``
            lists e.g. ``["apgd-ce", "square"]``).
        budget: dotted attribute overrides of the sub-attacks, e.g.
            ``{"apgd.n_iter": 10, "square.n_queries": 100}`` (cheaper runs).
        progress: print an upper-bound time estimate first, then AutoAttack's own messages.
        checks: filled with the flags of AutoAttack's own sanity checks (its ``checks``
            module: randomised or dynamic defence, softmax outputs, zero gradients, too many
            target classes, Square beating the white-box attacks), each True or False, and
            their messages.
    """
    from pyautoattack import AutoAttack

    device = next(model.parameters()).device
    kwargs: dict[str, Any] = {
        "device": device,
        "eps": eps,
        "norm": "Linf",
        "seed": seed,
        "version": version,
    }
    if attacks:
        kwargs.update(version="custom", attacks=list(attacks))
    adversary = AutoAttack(model, **kwargs)
    for dotted, value in (budget or {}).items():
        owner_name, _, attribute = dotted.partition(".")
        owner = getattr(adversary, owner_name, None)
        if owner is None or not attribute or not hasattr(owner, attribute):
            raise ConfigError(
                f"autoattack budget: unknown setting '{dotted}' (e.g. apgd.n_iter, "
                f"square.n_queries)"
            )
        setattr(owner, attribute, value)
    captured = _CheckCapture()
    logging.getLogger("auto-attack").addHandler(captured)
    try:
        x_adv = _run_autoattack(adversary, model, x, y, batch_size, progress)
    finally:
        logging.getLogger("auto-attack").removeHandler(captured)
    if checks is not None:
        checks.update(captured.flags())
    return x_adv


def _run_autoattack(
    adversary: Any, model: nn.Module, x, y, batch_size: int, progress: bool
) -> torch.Tensor:
    if progress:
        seconds = autoattack_estimate(model, adversary, x, y, batch_size)
        print(
            f"  autoattack ({', '.join(adversary.attacks_to_run)}) on {len(y)} examples: at most "
            f"~{seconds / 60:.1f} min here (every example robust to every sub-attack); "
            "cheaper: --autoattack-budget apgd.n_iter=10 square.n_queries=100",
            flush=True,
        )
        with _autoattack_log_to_stdout():
            x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    else:
        x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    return x_adv.detach()


#: AutoAttack's sanity checks (``pyautoattack.checks``; Croce & Hein's flags_doc.md): flag ->
#: a phrase of the warning it logs.
AUTOATTACK_CHECKS = {
    "randomized": "randomized defense",
    "softmax_output": "probability distribution",
    "zero_gradients": "zero gradient",
    "dynamic": "dynamic defense",
    "n_classes": "target classes",
    "square_beats_whitebox": "Square Attack has decreased",
}


class _CheckCapture(logging.Handler):
    """Collects the warnings AutoAttack's checks log while it runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def flags(self) -> dict[str, Any]:
        found = {
            flag: any(phrase in m for m in self.messages)
            for flag, phrase in AUTOATTACK_CHECKS.items()
        }
        return {**found, "messages": list(self.messages)}


#: Sub-attack -> (attribute on the AutoAttack object, cost of one step in forward+backward passes).
_AUTOATTACK_COSTS = {
    "apgd-ce": ("apgd", 1.0),
    "apgd-dlr": ("apgd", 1.0),
    "apgd-t": ("apgd_targeted", 1.0),
    "fab": ("fab", 2.0),
    "fab-t": ("fab", 2.0),
    "square": ("square", 1 / 3),
}


def autoattack_estimate(
    model: nn.Module, adversary: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> float:
    """Upper bound of AutoAttack's seconds: one timed forward+backward pass of a batch, times
    the passes each sub-attack makes (iterations x restarts x target classes, or queries)."""
    batch = x[:batch_size].clone().requires_grad_(True)
    started = time.perf_counter()
    torch.nn.functional.cross_entropy(model(batch), y[:batch_size]).backward()
    per_example = (time.perf_counter() - started) / len(batch)
    passes = 0.0
    for name in adversary.attacks_to_run:
        owner_name, cost = _AUTOATTACK_COSTS.get(name, ("apgd", 1.0))
        owner = getattr(adversary, owner_name)
        budget: Any = getattr(owner, "n_queries", None) or getattr(owner, "n_iter", 100)
        steps = float(budget)
        targets = getattr(owner, "n_target_classes", 1) if name.endswith("-t") else 1
        passes += cost * steps * getattr(owner, "n_restarts", 1) * targets
    return passes * per_example * len(y)


@contextlib.contextmanager
def _autoattack_log_to_stdout():
    """AutoAttack's own progress messages (logger ``auto-attack``), indented, while it runs."""
    logger = logging.getLogger("auto-attack")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("    %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # its per-sub-attack progress lines are DEBUG messages
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def evaluate(
    model: nn.Module,
    data: torch.utils.data.DataLoader | tuple[torch.Tensor, torch.Tensor],
    attacks: Sequence[str] = ATTACKS,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    n_examples: int | None = None,
    autoattack_version: str = "standard",
    autoattack_attacks: Sequence[str] | None = None,
    autoattack_budget: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
) -> pd.DataFrame:
    """Accuracy under each attack, on the same (first ``n_examples``) examples.

    Returns:
        A tidy frame: one row per attack with ``attack``, ``metric``,
        ``accuracy``, ``n_examples``, ``eps``, ``norm``.
    """
    for name in attacks:
        if name not in ATTACKS:
            raise ConfigError(
                f"unknown attack '{name}'{near_miss(name, ATTACKS)}; choose from "
                f"{', '.join(ATTACKS)}"
            )
    device = next(model.parameters()).device
    if isinstance(data, tuple):
        x, y = data
    else:
        xs, ys, seen = [], [], 0
        for xb, yb in data:
            xs.append(xb)
            ys.append(yb)
            seen += len(yb)
            if n_examples is not None and seen >= n_examples:
                break
        x, y = torch.cat(xs), torch.cat(ys)
    if n_examples is not None:
        x, y = x[:n_examples], y[:n_examples]
    x, y = x.to(device), y.to(device)
    was_training = model.training
    model.eval()
    wrapped = _Logits(model).eval()
    run = AttackRun(
        wrapped,
        x,
        y,
        eps,
        step_size,
        seed,
        batch_size,
        {
            "version": autoattack_version,
            "attacks": autoattack_attacks,
            "budget": autoattack_budget,
            "progress": progress,
        },
    )
    rows = []
    try:
        for name in attacks:
            torch.manual_seed(seed)
            if progress:
                print(f"  {name} ...", flush=True)
            x_eval = ATTACK_EXAMPLES[name](run)
            rows.append(
                {
                    "attack": name,
                    "metric": M.ATTACK_METRICS[name],
                    "accuracy": _accuracy(wrapped, x_eval, y, batch_size),
                    "n_examples": len(y),
                    "eps": eps,
                    "norm": "Linf",
                }
            )
    finally:
        model.train(was_training)
    frame = pd.DataFrame(rows)
    if run.checks:
        frame.attrs["autoattack_checks"] = dict(run.checks)
    return frame


def transfer_accuracy(
    source: nn.Module,
    target: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 20,
    seed: int = 0,
    batch_size: int = 256,
) -> float:
    """Black-box transfer: accuracy of ``target`` on PGD examples crafted on ``source``."""
    device = next(source.parameters()).device
    source_was, target_was = source.training, target.training
    source.eval(), target.eval()
    try:
        run = AttackRun(
            _Logits(source), x.to(device), y.to(device), eps, step_size, seed, batch_size, {}
        )
        x_adv = _pgd_examples(steps)(run)
        target_device = next(target.parameters()).device
        return _accuracy(_Logits(target), x_adv.to(target_device), y.to(target_device), batch_size)
    finally:
        source.train(source_was), target.train(target_was)
