"""Fused mixed edges against the plain ones (one module per operation), in float64."""

from __future__ import annotations

import copy

import pytest
import torch

from search_spaces import SpaceConfig
from search_spaces import Supernet
from search_spaces import fused as fused_module
from search_spaces.fused import BATCH_NORM_LIMIT
from search_spaces.fused import DENSE_LIMIT
from search_spaces.fused import FusedMixedOps
from search_spaces.fused import TrainingBatchNorm
from search_spaces.fused import _PlainCopy
from search_spaces.fused import batch_norm
from search_spaces.operations import PRIMITIVES
from search_spaces.operations import MixedOp
from tests.helpers import plain_and_fused_supernets

SUBSETS = [
    PRIMITIVES,
    ("skip_connect", "sep_conv_3x3"),
    ("dil_conv_5x5", "max_pool_3x3"),
    ("sep_conv_5x5", "dil_conv_3x3", "avg_pool_3x3", "sep_conv_3x3"),
    ("avg_pool_3x3",),
    ("skip_connect",),
]
TOL = 1e-10


def _pair(c: int, stride: int, edges: int, primitives) -> tuple[list[MixedOp], FusedMixedOps]:
    plain = [MixedOp(c, stride, primitives).double() for _ in range(edges)]
    with torch.no_grad():  # distinct, non-trivial statistics
        for op in plain:
            for module in op.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.normal_()
                    module.running_var.uniform_(0.5, 2.0)
    fused = FusedMixedOps(c, stride, edges, primitives).double()
    fused.copy_from(plain)
    return plain, fused


def _grads_as_fused(plain: list[MixedOp], fused: FusedMixedOps, grads) -> dict[str, torch.Tensor]:
    """The plain edges' parameter gradients, rearranged into the fused layout."""
    holders = copy.deepcopy(plain)
    params = [p for op in holders for p in op.parameters()]
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.copy_(torch.zeros_like(p) if g is None else g)
    target = copy.deepcopy(fused)
    target.copy_from(holders)
    return dict(target.named_parameters())


@pytest.mark.parametrize("primitives", SUBSETS, ids=lambda p: "+".join(p))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [2, 5, 11, 16])  # 2, 5: dense form; 11, 16: convolution
def test_fused_edges_equal_plain_edges(primitives, stride, size) -> None:
    _check_against_plain(primitives, stride, size)


@pytest.mark.parametrize("primitives", [PRIMITIVES, ("avg_pool_3x3",), SUBSETS[2]], ids=len)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("edges", "repeat"), [(4, 2), (3, 3)])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_edges_sharing_inputs_equal_plain_edges(primitives, stride, edges, repeat, train) -> None:
    """Edge ``e`` reading input ``e % S``, as a cell's edges leaving one state: the
    pools' shared BatchNorm moves every copy's running statistics like its own."""
    _check_against_plain(primitives, stride, 5, edges, repeat, train)


@pytest.mark.parametrize(("edges", "repeat"), [(3, 1), (3, 3), (4, 2)])
def test_channels_last_inputs_equal_plain_edges(edges, repeat) -> None:
    """Inputs stacked from channels_last states, as a channels_last supernet's cells do."""
    _check_against_plain(PRIMITIVES, 1, 5, edges, repeat, channels_last=True)


def test_inputs_and_copies_must_make_the_edges() -> None:
    fused = FusedMixedOps(2, 1, edges=4)
    with pytest.raises(ValueError, match="3 inputs x 1 copies do not make 4 edges"):
        fused(torch.rand(1, 3, 2, 4, 4), torch.rand(4, len(PRIMITIVES)))


def _check_against_plain(
    primitives,
    stride: int,
    size: int,
    edges: int = 3,
    repeat: int = 1,
    train: bool = True,
    channels_last: bool = False,
) -> None:
    torch.manual_seed(0)
    c = 4
    plain, fused = _pair(c, stride, edges, primitives)
    for module in [*plain, fused]:
        module.train(train)
    sources = edges // repeat
    if channels_last:
        states = torch.rand(sources, 5, c, size, size, dtype=torch.float64)
        x = torch.stack([s.contiguous(memory_format=torch.channels_last) for s in states], 1)
        x.requires_grad_(True)
    else:
        x = torch.rand(5, sources, c, size, size, dtype=torch.float64, requires_grad=True)
    weights = torch.softmax(torch.randn(edges, len(primitives), dtype=torch.float64), -1)
    weights.requires_grad_(True)
    expected = torch.stack(
        [op(x[:, e % sources], weights[e]) for e, op in enumerate(plain)], dim=1
    )
    got = fused(x, weights, repeat)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=TOL, rtol=0)
    # Running statistics moved identically (compare in the fused layout).
    moved = copy.deepcopy(fused)
    moved.copy_from(plain)
    for (name, a), b in zip(fused.named_buffers(), moved.buffers(), strict=True):
        assert torch.allclose(a, b, atol=TOL, rtol=0), name
    # Gradients: input, op weights and every parameter.
    probe = torch.randn_like(expected)
    plain_params = [p for op in plain for p in op.parameters()]
    g_plain = torch.autograd.grad(
        (expected * probe).sum(), [x, weights, *plain_params], allow_unused=True
    )
    g_fused = torch.autograd.grad((got * probe).sum(), [x, weights, *fused.parameters()])
    assert torch.allclose(g_fused[0], g_plain[0], atol=TOL, rtol=0)
    assert torch.allclose(g_fused[1], g_plain[1], atol=TOL, rtol=0)
    as_fused = _grads_as_fused(plain, fused, g_plain[2:])
    for (name, _), grad in zip(fused.named_parameters(), g_fused[2:], strict=True):
        assert torch.allclose(grad, as_fused[name], atol=TOL, rtol=0), name


@pytest.mark.parametrize("stride", [1, 2])
def test_merged_kernels_equal_plain_edges(stride, monkeypatch) -> None:
    """The CUDA form (kernels of one dilation zero-padded into one call), run on CPU."""
    monkeypatch.setattr(fused_module, "MERGED_KERNEL_DEVICES", frozenset({"cpu"}))
    test_fused_edges_equal_plain_edges(SUBSETS[0], stride, 16)


@pytest.mark.parametrize("primitives", [PRIMITIVES, SUBSETS[2]], ids=len)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("edges", "repeat"), [(3, 1), (4, 2)])
def test_branch_by_branch_equals_plain_edges(
    primitives, stride, edges, repeat, monkeypatch
) -> None:
    """The CPU form for large maps: each branch its own depthwise call, matmul and BatchNorm."""
    monkeypatch.setattr(fused_module, "BRANCH_LIMIT", 0)
    _check_against_plain(primitives, stride, 11, edges, repeat)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("edges", "repeat"), [(3, 1), (4, 2)])
def test_vectorised_batch_statistics_equal_plain_edges(stride, edges, repeat, monkeypatch) -> None:
    """Every training-mode BatchNorm of the edge (stages, pools shared or not, factorized
    reduce) through :class:`TrainingBatchNorm`: outputs, gradients, running statistics."""
    monkeypatch.setattr(fused_module, "BATCH_NORM_LIMIT", 0)
    _check_against_plain(PRIMITIVES, stride, 11, edges, repeat)


@pytest.mark.parametrize("weighted", [True, False], ids=["weight", "no-weight"])
@pytest.mark.parametrize("momentum", [0.1, 1.0])
def test_training_batch_norm_equals_the_backend(weighted, momentum) -> None:
    torch.manual_seed(0)
    x = (3 * torch.randn(6, 5, 7, 3, dtype=torch.float64) + 2).requires_grad_(True)
    weight = torch.rand(5, dtype=torch.float64, requires_grad=True) if weighted else None
    stats = [torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.5]
    theirs = [t.clone() for t in stats]
    got = TrainingBatchNorm.apply(x, weight, *stats, momentum, 1e-5)
    expected = torch.nn.functional.batch_norm(x, *theirs, weight, None, True, momentum, 1e-5)
    assert torch.allclose(got, expected, atol=TOL, rtol=0)
    for a, b in zip(stats, theirs, strict=True):
        assert torch.allclose(a, b, atol=TOL, rtol=0)
    inputs = [x] if weight is None else [x, weight]
    probe = torch.randn_like(expected)
    have = torch.autograd.grad((got * probe).sum(), inputs)
    want = torch.autograd.grad((expected * probe).sum(), inputs)
    for a, b in zip(have, want, strict=True):
        assert torch.allclose(a, b, atol=TOL, rtol=0)


def test_batch_norm_takes_the_vectorised_statistics_only_where_they_pay() -> None:
    def grad_fn(x: torch.Tensor, training: bool = True) -> str:
        x = x.requires_grad_(True)
        stats = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
        return type(batch_norm(x, *stats, None, training, 0.1, 1e-5).grad_fn).__name__

    large = torch.rand(16, BATCH_NORM_LIMIT // 1024, 8, 8)
    assert grad_fn(large) == TrainingBatchNorm.__name__ + "Backward"
    assert grad_fn(large.clone(), training=False) == "NativeBatchNormBackward0"
    assert grad_fn(large.transpose(2, 3)) == "NativeBatchNormBackward0"  # not contiguous
    assert grad_fn(torch.rand(2, 4, 8, 8)) == "NativeBatchNormBackward0"  # small


@pytest.mark.parametrize(("k", "stride", "dilation"), [(3, 1, 1), (5, 1, 2), (5, 2, 1), (3, 2, 2)])
def test_depthwise_conv_equals_the_backend(k, stride, dilation) -> None:
    """Its own input gradient, and weight gradients (dilated and 5x5 ones on channels_last
    copies) equal the backend's convolution, and every result is in the plain layout."""
    from search_spaces.fused import depthwise_conv

    torch.manual_seed(0)
    x = torch.randn(4, 16, 12, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(16, 1, k, k, dtype=torch.float64, requires_grad=True)
    padding = dilation * (k - 1) // 2
    expected = torch.nn.functional.conv2d(x, w, None, stride, padding, dilation, 16)
    got = depthwise_conv(x, w, stride, dilation)
    assert got.is_contiguous() and torch.allclose(got, expected, atol=TOL, rtol=0)
    probe = torch.randn_like(expected)
    want = torch.autograd.grad((expected * probe).sum(), (x, w))
    have = torch.autograd.grad((got * probe).sum(), (x, w))
    assert have[0].is_contiguous() and have[1].is_contiguous()
    for a, b in zip(have, want, strict=True):
        assert torch.allclose(a, b, atol=TOL, rtol=0)


def test_both_forms_of_a_stage_are_exercised() -> None:
    stage = FusedMixedOps(4, 1, 3).stage1
    assert stage.dense_size(2, 2) <= DENSE_LIMIT < stage.dense_size(16, 16)


def test_eval_mode_uses_the_running_statistics() -> None:
    torch.manual_seed(1)
    plain, fused = _pair(4, 1, 2, PRIMITIVES)
    for module in [*plain, fused]:
        module.eval()
    x = torch.rand(3, 2, 4, 6, 6, dtype=torch.float64)
    weights = torch.rand(2, len(PRIMITIVES), dtype=torch.float64)
    expected = torch.stack([op(x[:, e], weights[e]) for e, op in enumerate(plain)], dim=1)
    assert torch.allclose(fused(x, weights), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize(("nodes", "layers", "size"), [(1, 3, 6), (2, 5, 8), (3, 5, 7), (4, 4, 8)])
def test_fused_supernet_equals_plain_supernet(nodes, layers, size) -> None:
    plain, fused = plain_and_fused_supernets(
        SpaceConfig(layers=layers, init_channels=4, nodes=nodes), seed=2
    )
    x = torch.rand(4, 3, size, size, dtype=torch.float64, requires_grad=True)
    out_plain, out_fused = plain(x), fused(x)
    assert torch.allclose(out_fused, out_plain, atol=TOL, rtol=0)
    used = [a for c, a in plain.arch_parameters().items() if c in plain.cell_types()]
    used_fused = [a for c, a in fused.arch_parameters().items() if c in fused.cell_types()]
    g_plain = torch.autograd.grad(out_plain.square().sum(), [x, *used])
    g_fused = torch.autograd.grad(out_fused.square().sum(), [x, *used_fused])
    for a, b in zip(g_fused, g_plain, strict=True):
        assert torch.allclose(a, b, atol=TOL, rtol=0)


def test_copy_from_refuses_other_spaces_and_directions() -> None:
    a = Supernet(SpaceConfig(layers=3, init_channels=2, nodes=1), edge_impl="plain")
    with pytest.raises(ValueError, match="same search space"):
        Supernet(SpaceConfig(layers=3, init_channels=4, nodes=1)).copy_from(a)
    with pytest.raises(ValueError, match="cannot copy"):
        a.copy_from(Supernet(SpaceConfig(layers=3, init_channels=2, nodes=1)))
    with pytest.raises(ValueError, match="edge_impl"):
        Supernet(SpaceConfig(layers=3, init_channels=2, nodes=1), edge_impl="fast")


def test_plain_copies_send_gradients_back_in_their_inputs_layout() -> None:
    """The pools' outputs leave channels_last; their gradients return channels_last,
    the layout the CPU pooling backward kernels are fast in."""
    x = torch.rand(2, 3, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = _PlainCopy.apply(x)
    assert y.is_contiguous() and torch.equal(y, x)
    captured = []
    x.register_hook(lambda grad: captured.append(grad))
    probe = torch.randn(2, 2, 3, 4, 4)[:, 0]  # a strided gradient, as from a stack
    y.backward(probe)
    assert captured[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(captured[0], probe)


def test_training_batch_norm_differentiates_twice() -> None:
    """Without ``once_differentiable`` its backward must itself be differentiable."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(2, dtype=torch.float64, requires_grad=True)

    def normed(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        stats = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
        return TrainingBatchNorm.apply(x, weight, *stats, 0.1, 1e-5)

    assert torch.autograd.gradgradcheck(normed, (x, weight))
