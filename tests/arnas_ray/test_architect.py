"""The architecture step against direct computations on a tiny float64 supernet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from arnas_ray.search.architect import ArchitectureStep
from arnas_ray.search.architect import FixedWeightCombiner
from arnas_ray.search.architect import MGDACombiner
from arnas_ray.search.architect import SingleObjectiveCombiner
from arnas_ray.search.mgda import two_objective_gamma
from search_spaces import SpaceConfig
from search_spaces import Supernet
from tests.helpers import plain_and_fused_supernets

LR, WD, MOMENTUM = 0.05, 3e-4, 0.9


@pytest.fixture
def setup():
    torch.manual_seed(0)
    # layers=4: cells accurate, reduce, reduce, robust: every alpha set is used.
    net = Supernet(SpaceConfig(layers=4, init_channels=2, nodes=1)).double()
    with torch.no_grad():
        for alpha in net.arch_parameters().values():
            alpha.normal_(0, 0.5)
    g = torch.Generator().manual_seed(1)
    batch = lambda: (
        torch.rand(6, 3, 8, 8, generator=g, dtype=torch.float64),  # noqa: E731
        torch.randint(0, 10, (6,), generator=g),
    )
    train, search = batch(), batch()
    search_adv = (
        search[0] + 0.03 * torch.rand(search[0].shape, generator=g, dtype=torch.float64)
    ).clamp(0, 1)
    return net, train, search, search_adv


def _step(net, combiner, order="second", lam=0.1, unroll_r=0.01):
    optimizer = torch.optim.SGD(list(net.arch_parameters().values()), lr=0.0)
    return ArchitectureStep(
        net,
        optimizer,
        combiner,
        order=order,
        regularization_coefficient=lam,
        momentum=MOMENTUM,
        weight_decay=WD,
        unroll_r=unroll_r,
    )


def _unrolled_objective(net, alphas, train, x_val, y_val, scale):
    """L_val(w - lr (grad_w L_train(w, a) + wd w), a), computed directly."""
    weights = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_weights()}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    loss = F.cross_entropy(
        functional_call(net, {**weights, **alphas, **buffers}, (train[0],)), train[1]
    )
    grads = torch.autograd.grad(loss, list(weights.values()))
    unrolled = {n: (w - LR * (g + WD * w)).detach() for (n, w), g in zip(weights.items(), grads)}
    logits = functional_call(net, {**unrolled, **alphas, **buffers}, (x_val,))
    return scale * F.cross_entropy(logits, y_val)


def test_first_order_equals_autograd_of_validation_loss(setup) -> None:
    net, train, search, search_adv = setup
    grads, _ = _step(net, SingleObjectiveCombiner("natural"), order="first").objective_gradients(
        train, search, search_adv, LR
    )
    net.zero_grad()
    F.cross_entropy(net(search[0]), search[1]).backward()
    for got, alpha in zip(grads["natural"], net.arch_parameters().values()):
        assert torch.allclose(got, alpha.grad, atol=1e-10)


@pytest.mark.parametrize(
    ("objective", "x_index", "scale"), [("natural", 0, 1.0), ("adversarial", 1, 0.1)]
)
def test_second_order_matches_finite_difference_of_unrolled_objective(
    setup, objective, x_index, scale
) -> None:
    net, train, search, search_adv = setup
    # The finite-difference Hessian-vector product is exact as r -> 0; in float64 a small
    # radius checks the implementation itself. (The paper's r = 0.01/||v|| is an
    # approximation whose error depends on the curvature of the network, large for this
    # 2-channel toy with max-pool kinks.)
    step = _step(net, MGDACombiner(), unroll_r=1e-6)
    grads, _ = step.objective_gradients(train, search, search_adv, LR)
    x_val = (search[0], search_adv)[x_index]
    names = list(net.arch_parameters())
    alphas = {f"alphas_{c}": a.detach().clone() for c, a in net.arch_parameters().items()}
    h = 1e-5
    for cell_index, cell in enumerate(names):
        key = f"alphas_{cell}"
        numeric = torch.zeros_like(alphas[key])
        for flat in range(alphas[key].numel()):
            bumped = []
            for sign in (1, -1):
                perturbed = {k: v.clone() for k, v in alphas.items()}
                perturbed[key].view(-1)[flat] += sign * h
                bumped.append(_unrolled_objective(net, perturbed, train, x_val, search[1], scale))
            numeric.view(-1)[flat] = (bumped[0] - bumped[1]) / (2 * h)
        got = grads[objective][cell_index]
        assert torch.allclose(got, numeric, rtol=1e-3, atol=1e-6), (cell, got, numeric)


def test_weighted_with_zero_lambda_equals_natural(setup) -> None:
    net, train, search, search_adv = setup
    start = {c: a.detach().clone() for c, a in net.arch_parameters().items()}
    results = []
    for combiner, lam in (
        (FixedWeightCombiner(1.0, 1.0), 0.0),
        (SingleObjectiveCombiner("natural"), 0.1),
    ):
        with torch.no_grad():
            for c, a in net.arch_parameters().items():
                a.copy_(start[c])
        step = _step(net, combiner, lam=lam)
        step.optimizer.param_groups[0]["lr"] = 1.0
        step.step(train, search, search_adv, LR)
        results.append({c: a.detach().clone() for c, a in net.arch_parameters().items()})
    for c in results[0]:
        assert torch.allclose(results[0][c], results[1][c], atol=1e-12)
        assert not torch.equal(results[0][c], start[c])


def test_mgda_step_uses_gamma_of_the_objective_gradients(setup) -> None:
    net, train, search, search_adv = setup
    step = _step(net, MGDACombiner())
    grads, _ = step.objective_gradients(train, search, search_adv, LR)
    flat = [torch.cat([g.flatten() for g in grads[o]]) for o in ("natural", "adversarial")]
    info = step.step(train, search, search_adv, LR)
    assert info.weights["natural"] == pytest.approx(float(two_objective_gamma(*flat)), abs=1e-6)
    assert set(info.losses) == {"natural", "adversarial"}


def test_virtual_passes_leave_batchnorm_statistics_alone(setup) -> None:
    net, train, search, search_adv = setup
    before = {n: b.clone() for n, b in net.named_buffers()}
    _step(net, MGDACombiner()).step(train, search, search_adv, LR)
    assert all(torch.equal(before[n], b) for n, b in net.named_buffers())


@pytest.mark.parametrize(
    ("order", "nodes", "size"),
    [("second", 2, 8), ("first", 2, 8), ("second", 4, 16)],
    ids=["second-order", "first-order", "second-order-4-nodes-16px"],
)
def test_fused_edges_give_the_plain_architecture_step(order, nodes, size) -> None:
    """The fast path (fused edges) equals the authors' structure (one module per
    operation) in float64: both objectives' alpha gradients, the MGDA weight, the
    alphas after the step and the untouched BatchNorm statistics; also at 4 nodes on
    16x16 inputs, a shape nearer the compute-bound benchmark preset."""
    plain, fused = plain_and_fused_supernets(
        SpaceConfig(layers=5, init_channels=4, nodes=nodes), seed=3
    )
    g = torch.Generator().manual_seed(4)
    n = 8 if size == 8 else 4
    batch = lambda: (
        torch.rand(n, 3, size, size, generator=g, dtype=torch.float64),  # noqa: E731
        torch.randint(0, 10, (n,), generator=g),
    )
    train, search = batch(), batch()
    search_adv = (
        search[0] + 0.03 * torch.rand(search[0].shape, generator=g, dtype=torch.float64)
    ).clamp(0, 1)
    results = []
    for net in (plain, fused):
        weight_opt = torch.optim.SGD(net.weights(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(train[0]), train[1]).backward()
        weight_opt.step()  # momentum buffers exist, as mid-search
        arch_opt = torch.optim.Adam(list(net.arch_parameters().values()), lr=0.01)
        step = ArchitectureStep(
            net, arch_opt, MGDACombiner(), order=order, momentum=MOMENTUM, weight_decay=WD
        )
        grads, losses = step.objective_gradients(train, search, search_adv, LR, weight_opt)
        info = step.step(train, search, search_adv, LR, weight_opt)
        alphas = [a.detach().clone() for a in net.arch_parameters().values()]
        results.append((grads, losses, info.weights["natural"], alphas))
    (g_plain, l_plain, gamma_plain, a_plain), (g_fused, l_fused, gamma_fused, a_fused) = results
    for objective in ("natural", "adversarial"):
        for a, b in zip(g_fused[objective], g_plain[objective], strict=True):
            assert torch.allclose(a, b, atol=1e-10, rtol=0)
        assert l_fused[objective] == pytest.approx(l_plain[objective], abs=1e-10)
    assert gamma_fused == pytest.approx(gamma_plain, abs=1e-10)
    for a, b in zip(a_fused, a_plain, strict=True):
        assert torch.allclose(a, b, atol=1e-10, rtol=0)
        assert not torch.equal(a, torch.zeros_like(a))


@pytest.mark.parametrize("mode", ["l2", "loss", "loss+"])
def test_normalized_mgda_step_is_the_min_norm_point_of_normalized_gradients(setup, mode) -> None:
    """The applied alpha gradient is sum_k w_k g_k / d_k with w the min-norm weights of the
    normalised gradients; with l2 and loss it no longer depends on lambda."""
    from arnas_ray.search.mgda import gradient_normalizers
    from arnas_ray.search.mgda import min_norm_weights
    from arnas_ray.search.mgda import normalize_gradients

    net, train, search, search_adv = setup
    start = {c: a.detach().clone() for c, a in net.arch_parameters().items()}
    applied = []
    for lam in (0.1, 2.0):
        with torch.no_grad():
            for c, a in net.arch_parameters().items():
                a.copy_(start[c])
        step = _step(net, MGDACombiner(mode), lam=lam)
        grads, losses = step.objective_gradients(train, search, search_adv, LR)
        flat = [torch.cat([g.flatten() for g in grads[o]]) for o in ("natural", "adversarial")]
        values = [losses["natural"], losses["adversarial"]]
        weights = min_norm_weights(normalize_gradients(flat, values, mode))
        divisors = gradient_normalizers(flat, values, mode)
        expected = (
            float(weights[0]) / float(divisors[0]) * flat[0]
            + float(weights[1]) / float(divisors[1]) * flat[1]
        )
        step.optimizer.param_groups[0]["lr"] = 1.0  # SGD: alphas move by exactly -gradient
        info = step.step(train, search, search_adv, LR)
        moved = torch.cat(
            [(start[c] - a.detach()).flatten() for c, a in net.arch_parameters().items()]
        )
        assert torch.allclose(moved, expected, atol=1e-10)
        assert info.weights["natural"] == pytest.approx(float(weights[0]), abs=1e-6)
        applied.append(moved / moved.norm())
    if mode != "loss+":
        assert torch.allclose(applied[0], applied[1], atol=1e-6)  # lambda cancels
    else:  # lambda acts through the adversarial loss
        assert not torch.allclose(applied[0], applied[1], atol=1e-3)
