"""Fused mixed edges: many :class:`~search_spaces.operations.MixedOp` edges in a
handful of kernel calls. Longer than 400 lines because the fused forward, its
custom depthwise gradient and the weight layout they share are one unit.

A supernet edge evaluates every candidate operation on its input and sums them
weighted by ``softmax(alpha)`` (DARTS, Liu et al., ICLR 2019, Eq. 2). Run as
one module per operation and per edge (:class:`MixedOp`, the authors'
structure), a DARTS cell costs several hundred kernel calls forward and as
many backward; on the small feature maps of a search most of that time is
per-call overhead, not arithmetic. :class:`FusedMixedOps` evaluates ``E``
edges of equal width and stride at once (a cell evaluates all edges leaving
one state together: see :class:`~search_spaces.supernet.SearchCell`) and folds
the operations' shared structure:

* one ReLU for every convolution (each DARTS conv op starts with its own ReLU
  of the same tensor);
* the first-stage depthwise convolutions of all edges as one grouped convolution
  per kernel size (on CUDA, where calls cost more than arithmetic, all
  operations of equal dilation in one: smaller kernels zero-padded to the
  largest, the padding rebuilt from the real kernels at every call, so
  gradients reach real taps only), the second-stage ones of the ``sep_conv``
  operations likewise;
* the pointwise convolutions of a stage as one batched matrix product (on CPU and
  large maps one per branch: :data:`BRANCH_LIMIT`);
* a strided depthwise convolution whose dilation is a multiple of its stride as an
  undilated one on the subsampled input (it reads no other pixels);
* the BatchNorms of a stage as one call whose affine scale is the operation's
  softmax weight: ``w * BN(z) = BN(z; weight=w)`` for DARTS' non-affine
  BatchNorm, so the weighting costs nothing; in training on CPU its batch statistics
  from vectorised reductions (:class:`TrainingBatchNorm`);
* on small maps (:data:`DENSE_LIMIT`) a stage's depthwise and pointwise
  convolutions as one dense matrix per edge (the convolution's Toeplitz matrix
  times the pointwise weights), since a convolution call costs far more than
  its arithmetic there;
* the pools once per distinct input (:meth:`FusedMixedOps.forward`'s ``repeat``: a
  cell's edges leaving one state read it alike), and in training their BatchNorm
  statistics once too, since copies of one input share them;
* the input gradients of dilated kernels through :class:`DepthwiseConv`, one more
  depthwise convolution with the flipped kernel, several times faster on CPU than
  the backend's own backward; on CPU the weight gradients of dilated and 5x5
  kernels on channels_last copies, where the backend's kernel is much faster
  (undilated kernels otherwise use the backend's backward: :func:`depthwise_conv`).

The parameters of the ``E`` edges are stacked (one BatchNorm per stage), so
the state dict differs from :class:`MixedOp`'s; :meth:`FusedMixedOps.copy_from`
converts. The results equal MixedOp's to float64 rounding, forward, backward
and running statistics (``tests/search_spaces/test_fused.py``).

.. note:: Unlike ``nn.BatchNorm2d`` the fused BatchNorms do not count
   ``num_batches_tracked``: with a fixed momentum (DARTS' 0.1) it is never read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from search_spaces.operations import PRIMITIVES
from search_spaces.operations import MixedOp

__all__ = [
    "BATCH_NORM_LIMIT",
    "BRANCH_LIMIT",
    "DENSE_LIMIT",
    "MERGED_KERNEL_DEVICES",
    "DepthwiseConv",
    "FusedMixedOps",
    "TrainingBatchNorm",
    "batch_norm",
    "depthwise_conv",
]

#: A stage runs as dense matrices when its matrix per edge has at most this many
#: entries (channels^2 x branches x input pixels x output pixels); measured on CPU,
#: the crossover of the two forms is between 2^16 and 2^18.
DENSE_LIMIT = 2**16

#: On CPU a stage whose input has at least this many values runs branch by branch (a
#: depthwise call, matmul and BatchNorm each) rather than stacked: on large maps the
#: copies between the stacked and per-branch layouts cost more than the extra calls.
BRANCH_LIMIT = 2**19

#: Devices on which a stage's kernels of one dilation run as one call, the smaller ones
#: zero-padded. Elsewhere (CPU) each kernel size is its own call: there the zero taps'
#: arithmetic costs more than a call (measured, forward and backward, one thread: one
#: call per size takes 0.56-0.75x the time of the merged 5x5 call on 8x8 to 32x32 maps).
MERGED_KERNEL_DEVICES = frozenset({"cuda"})


def _weight_grad_on_channels_last(x: torch.Tensor, kernel: int, dilation: int) -> bool:
    """Whether the weight gradient of a depthwise call should run on channels_last copies:
    on CPU, for dilated or 5x5 kernels, the plain-layout kernel is 2-6x slower, the copies
    included (``benchmarks/kernel_layout.py``; 3x3 undilated kernels gain nothing)."""
    return (
        x.device.type == "cpu"
        and (dilation > 1 or kernel > 3)
        and not x.is_contiguous(memory_format=torch.channels_last)
    )


class DepthwiseConv(torch.autograd.Function):
    """A depthwise convolution whose input gradient is a depthwise convolution.

    The input gradient of a stride-1 depthwise convolution with "same" padding
    is the correlation of the output gradient with the flipped kernel (stride
    2: the transposed convolution). The weight gradient is the backend's own, on CPU
    taken on channels_last copies for dilated and 5x5 kernels.
    """

    # The combined forward(ctx, ...), not forward + setup_context: the latter costs about
    # 50 us more per call on CPU (torch 2.14, one thread), a third of a small call's time.
    @staticmethod
    def forward(
        ctx, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, dilation: int
    ):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, weight)
        ctx.geometry = (stride, padding, dilation, tuple(x.shape))
        return F.conv2d(x, weight, None, stride, padding, dilation, x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, shape = ctx.geometry
        groups = shape[1]
        # Under autocast the forward ran in the gradient's precision; the backward
        # runs outside autocast, so match dtypes by hand (autograd casts the results back).
        weight = weight.to(grad.dtype)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            if stride == 1:
                grad_x = F.conv2d(grad, weight.flip(-1, -2), None, 1, padding, dilation, groups)
            else:
                span = dilation * (weight.shape[-1] - 1) + 1
                extra = [
                    shape[i] - ((grad.shape[i] - 1) * stride - 2 * padding + span) for i in (2, 3)
                ]
                grad_x = F.conv_transpose2d(
                    grad, weight, None, stride, padding, extra, groups, dilation
                )
        if ctx.needs_input_grad[1]:
            x = x.to(grad.dtype)
            if _weight_grad_on_channels_last(grad, weight.shape[-1], dilation):
                grad = grad.contiguous(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
            grad_w = torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                None,
                [stride] * 2,
                [padding] * 2,
                [dilation] * 2,
                False,
                [0, 0],
                groups,
                [False, True, False],
            )[1]
        return grad_x, grad_w, None, None, None


def _backend_backward(x: torch.Tensor, weight: torch.Tensor, stride: int, dilation: int) -> bool:
    """Whether the backend's own backward is the faster one: on CPU for undilated kernels,
    unless a 5x5 kernel at stride 1 needs its weight gradient (measured at the search's
    shapes, one thread: the backend's undilated input gradient takes 0.7-0.9x the flipped
    kernel's time; its dilated one 3-12x, and its 5x5 weight gradient 1.4-2.7x)."""
    return (
        x.device.type == "cpu"
        and dilation == 1
        and (weight.shape[-1] == 3 or stride > 1 or not weight.requires_grad)
    )


def depthwise_conv(
    x: torch.Tensor, weight: torch.Tensor, stride: int, dilation: int
) -> torch.Tensor:
    """Depthwise convolution with "same" padding (``weight``: ``[channels, 1, k, k]``)."""
    padding = dilation * (weight.shape[-1] - 1) // 2
    if _backend_backward(x, weight, stride, dilation):
        return F.conv2d(x, weight, None, stride, padding, dilation, x.shape[1])
    return DepthwiseConv.apply(x, weight, stride, padding, dilation)


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1


def _window_index(
    h: int, w: int, k: int, dilation: int, stride: int, missing: int
) -> torch.Tensor:
    """``[out pixels, in pixels]``: which tap ``ky * k + kx`` of a "same"-padded
    ``k x k`` kernel joins output pixel ``p`` to input pixel ``q`` (``missing``: none)."""
    pad = dilation * (k - 1) // 2
    h_out, w_out = _out_size(h, stride), _out_size(w, stride)
    index = torch.full((h_out * w_out, h * w), missing, dtype=torch.long)
    for oy in range(h_out):
        for ox in range(w_out):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * stride - pad + ky * dilation, ox * stride - pad + kx * dilation
                    if 0 <= iy < h and 0 <= ix < w:
                        index[oy * w_out + ox, iy * w + ix] = ky * k + kx
    return index


def _kernel_size(name: str) -> int:
    return int(name.rsplit("_", 1)[1].split("x")[0])


def _uniform_(tensor: torch.Tensor, fan_in: int) -> torch.Tensor:
    """``nn.Conv2d``'s default initialisation for a kernel with ``fan_in`` inputs."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


#: On CPU a training-mode BatchNorm over at least this many values takes its batch
#: statistics from vectorised reductions (:class:`TrainingBatchNorm`); below it the
#: backend's own kernel is as fast (measured, forward and backward, one thread).
BATCH_NORM_LIMIT = 2**16


class TrainingBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm without shift, ``weight`` its scale (or none), whose batch
    statistics come from vectorised reductions.

    On CPU the backend's training kernel sums each channel of the plain layout in a scalar
    loop: at the search's shapes (16 x 64-256 channels x 8x8-16x16, one thread) it takes
    1.7-3.4x the time of these reductions and the normalisation together, forward alone,
    and 1.5-2.1x forward and backward. The statistics are two-pass (mean, then the
    centred squares) as the backend's; the backward is the backend's own training-mode
    backward given the same saved mean and inverse standard deviation; the running
    statistics move as ``nn.BatchNorm2d``'s (unbiased variance). No
    ``once_differentiable``: it costs about 40 us a call, and the backward's ops are
    themselves differentiable.
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        running_mean: torch.Tensor,
        running_var: torch.Tensor,
        momentum: float,
        eps: float,
    ):
        n, c = x.shape[:2]
        flat = x.view(n, c, -1)
        count = n * flat.shape[2]
        mean = flat.sum(2).sum(0).div_(count)
        centred = flat - mean[:, None]
        squares = centred.square().sum(2).sum(0)
        invstd = squares.div(count).add_(eps).rsqrt_()
        running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        running_var.mul_(1 - momentum).add_(squares.div_(count - 1), alpha=momentum)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        scale = invstd if weight is None else invstd * weight
        return centred.mul_(scale[:, None]).view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, mean, invstd = ctx.saved_tensors
        needs_x, needs_weight = ctx.needs_input_grad[:2]
        grad_x, grad_weight, _ = torch.ops.aten.native_batch_norm_backward(
            grad,
            x,
            weight,
            None,
            None,
            mean,
            invstd,
            True,
            ctx.eps,
            [needs_x, weight is not None and needs_weight, False],
        )
        return grad_x, grad_weight, None, None, None, None


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    weight: torch.Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
) -> torch.Tensor:
    """``F.batch_norm`` without shift; in training on large contiguous CPU tensors
    :class:`TrainingBatchNorm` (:data:`BATCH_NORM_LIMIT`)."""
    if (
        training
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and x.numel() >= BATCH_NORM_LIMIT
        and x.numel() > x.shape[1]  # more than one value per channel (F.batch_norm checks)
        and x.is_contiguous()
        and (weight is None or weight.dtype == x.dtype)
    ):
        return TrainingBatchNorm.apply(x, weight, running_mean, running_var, momentum, eps)
    return F.batch_norm(x, running_mean, running_var, weight, None, training, momentum, eps)


def _batch_norm(
    bn: nn.BatchNorm2d,
    x: torch.Tensor,
    scale: torch.Tensor,
    training: bool,
    channels: slice = slice(None),
) -> torch.Tensor:
    """``bn`` (no affine) with ``scale`` as its weight, on ``bn``'s ``channels`` (its
    running statistics are views: they move in place)."""
    assert bn.running_mean is not None and bn.running_var is not None  # tracked stats
    momentum = 0.1 if bn.momentum is None else bn.momentum  # nn.BatchNorm2d's default
    return batch_norm(
        x,
        bn.running_mean[channels],
        bn.running_var[channels],
        scale,
        training,
        momentum,
        bn.eps,
    )


def _split_branches(
    blocks: Sequence[torch.Tensor], count: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Blocks ``[N, b, ...]`` holding branches in order → those of the first ``count``
    branches and those of the rest."""
    first: list[torch.Tensor] = []
    rest: list[torch.Tensor] = []
    seen = 0
    for block in blocks:
        b = block.shape[1]
        if seen >= count:
            rest.append(block)
        elif seen + b <= count:
            first.append(block)
        else:
            head, tail = block.split([count - seen, seen + b - count], dim=1)
            first.append(head)
            rest.append(tail)
        seen += b
    return first, rest


def _subsampled(x: torch.Tensor, stride: int, dilation: int) -> tuple[torch.Tensor, int, int]:
    """``(input, stride, dilation)`` of a "same"-padded depthwise call on ``x``. A dilation
    that is a multiple of the stride reads only every stride-th pixel: the same sums then
    run undilated at stride 1 on the subsampled input, whose input gradient avoids the
    backend's slow dilated transposed convolution (about 2 ms against 0.12 ms at 64
    channels, 8x8 outputs, on CPU)."""
    if stride > 1 and dilation % stride == 0:
        return x[..., ::stride, ::stride].contiguous(), 1, dilation // stride
    return x, stride, dilation


class _Stage(nn.Module):
    """``depthwise conv -> pointwise conv -> BatchNorm`` of ``branches`` operations
    on ``edges`` edges: a conv op's first block, or a ``sep_conv``'s second.

    Tensors are laid out ``[N, branch, edge, C, pixels]``.
    """

    def __init__(
        self, c: int, stride: int, edges: int, branches: Sequence[tuple[int, int]]
    ) -> None:
        super().__init__()
        self.c, self.stride, self.edges = c, stride, edges
        self.kernels = [k for k, _ in branches]
        self.depthwise = nn.ParameterList(
            _uniform_(torch.empty(edges * c, 1, k, k), k * k) for k, _ in branches
        )
        self.pointwise = nn.Parameter(_uniform_(torch.empty(len(branches), edges, c, c), c))
        self.bn = nn.BatchNorm2d(len(branches) * edges * c, affine=False)
        groups: dict[int, list[int]] = {}
        for index, (_, dilation) in enumerate(branches):
            groups.setdefault(dilation, []).append(index)
        self.groups = [(dilation, members) for dilation, members in groups.items()]
        if [i for _, members in self.groups for i in members] != list(range(len(branches))):
            raise ValueError("branches of equal dilation must be adjacent")
        self.dilations = [d for _, d in branches]
        self._index: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def dense_size(self, h: int, w: int) -> int:
        pixels = h * w * _out_size(h, self.stride) * _out_size(w, self.stride)
        return self.c * self.c * len(self.kernels) * pixels

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], scale: torch.Tensor
    ) -> list[torch.Tensor]:
        """``x``: ``[N, edges, C, H, W]`` shared by all branches, or blocks
        ``[N, b, edges, C, H, W]`` holding the branches in order; returns blocks
        ``[N, b, edges, C, H', W']``: one per branch for large inputs on CPU
        (:data:`BRANCH_LIMIT`), otherwise one for all branches."""
        shared = isinstance(x, torch.Tensor)
        first = x if isinstance(x, torch.Tensor) else x[0]
        n, h, w = first.shape[0], first.shape[-2], first.shape[-1]
        dense = self.dense_size(h, w) <= DENSE_LIMIT
        per_branch = n * self.edges * self.c * h * w >= BRANCH_LIMIT
        if not dense and per_branch and first.device.type not in MERGED_KERNEL_DEVICES:
            return self._branches(x, scale)
        stacked = (
            x if isinstance(x, torch.Tensor) else torch.cat(list(x), 1) if len(x) > 1 else x[0]
        )
        if dense:
            y = self._dense(stacked, shared)
        else:
            y = self._conv(stacked, shared)
        h_out, w_out = y.shape[-2:]
        y = _batch_norm(self.bn, y, scale, self.training)
        return [y.view(n, len(self.kernels), self.edges, self.c, h_out, w_out)]

    def _branches(
        self, x: torch.Tensor | Sequence[torch.Tensor], scale: torch.Tensor
    ) -> list[torch.Tensor]:
        """One depthwise call, matmul and BatchNorm per branch (CPU)."""
        shared = isinstance(x, torch.Tensor)
        if isinstance(x, torch.Tensor):
            sources = [x] * len(self.kernels)
        else:
            sources = [block[:, j] for block in x for j in range(block.shape[1])]
        n, h, w = sources[0].shape[0], sources[0].shape[-2], sources[0].shape[-1]
        width = self.edges * self.c
        subsampled: dict[int, tuple[torch.Tensor, int, int]] = {}
        blocks = []
        for i, (source, dilation) in enumerate(zip(sources, self.dilations, strict=True)):
            flat = source.reshape(n, width, h, w)
            if not shared or dilation not in subsampled:  # a shared input: once
                subsampled[dilation] = _subsampled(flat, self.stride, dilation)
            flat, stride, dilation = subsampled[dilation]
            z = depthwise_conv(flat, self.depthwise[i], stride, dilation)
            h_out, w_out = z.shape[-2:]
            y = torch.matmul(self.pointwise[i], z.view(n, self.edges, self.c, h_out * w_out)).view(
                n, width, h_out, w_out
            )
            part = slice(i * width, (i + 1) * width)
            y = _batch_norm(self.bn, y, scale[part], self.training, part)
            blocks.append(y.view(n, 1, self.edges, self.c, h_out, w_out))
        return blocks

    def _conv(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        """One depthwise call per branch (CPU) or per dilation, smaller kernels
        zero-padded (merged-kernel devices); one matmul for all branches."""
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        width = self.edges * self.c
        flat = x.reshape(n, -1, h, w)
        parts = []
        for dilation, members in self.groups:
            source, stride, dilation = _subsampled(flat, self.stride, dilation)
            if x.device.type not in MERGED_KERNEL_DEVICES:
                per_branch = None if shared else source.split(width, dim=1)
                for i in members:
                    inputs = source if per_branch is None else per_branch[i]
                    parts.append(depthwise_conv(inputs, self.depthwise[i], stride, dilation))
                continue
            size = max(self.kernels[i] for i in members)
            kernel = torch.cat([self._padded(self.depthwise[i], size) for i in members])
            if shared:
                inputs = source.repeat(1, len(members), 1, 1) if len(members) > 1 else source
            else:
                inputs = source[:, members[0] * width : (members[-1] + 1) * width]
            parts.append(depthwise_conv(inputs, kernel, stride, dilation))
        z = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        h_out, w_out = z.shape[-2:]
        branches = len(self.kernels)
        y = torch.matmul(
            self.pointwise.reshape(branches * self.edges, self.c, self.c),
            z.reshape(n, branches * self.edges, self.c, h_out * w_out),
        )
        return y.reshape(n, -1, h_out, w_out)

    def _dense(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        """Each (branch, edge) as one matrix ``[C * in pixels, C * out pixels]``:
        ``M[c, q, o, p] = pointwise[o, c] * depthwise_c[tap(p, q)]``."""
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        e, c, b = self.edges, self.c, len(self.kernels)
        index = self._window_index(h, w, x.device)  # [branches, P, Q] into the flat kernels
        p, q = index.shape[1:]
        flat = [k.reshape(e * c, -1) for k in self.depthwise] + [x.new_zeros(e * c, 1)]
        taps = torch.cat(flat, dim=1)[:, index].view(e, c, b, p, q)  # [E, C, B, P, Q]
        pointwise = self.pointwise.permute(1, 3, 0, 2)  # [E, C(in), B, O]
        matrix = (
            pointwise[:, :, None, :, :, None] * taps.permute(0, 1, 4, 2, 3)[:, :, :, :, None, :]
        )
        if shared:  # one input per edge: [E, N, C*Q] @ [E, C*Q, B*O*P]
            inputs = x.reshape(n, e, c * q).transpose(0, 1)
            y = torch.bmm(inputs, matrix.reshape(e, c * q, b * c * p))
            y = y.view(e, n, b, c * p).permute(1, 2, 0, 3)
        else:  # one input per (branch, edge): [B*E, N, C*Q] @ [B*E, C*Q, O*P]
            inputs = x.reshape(n, b * e, c * q).transpose(0, 1)
            matrix = matrix.permute(3, 0, 1, 2, 4, 5).reshape(b * e, c * q, c * p)
            y = torch.bmm(inputs, matrix).view(b, e, n, c * p).permute(2, 0, 1, 3)
        return y.reshape(n, b * e * c, _out_size(h, self.stride), _out_size(w, self.stride))

    def _window_index(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        key = (h, w, device)
        if key not in self._index:
            offsets = [0]
            for k in self.kernels:
                offsets.append(offsets[-1] + k * k)
            missing = offsets[-1]
            index = []
            for k, d, offset in zip(self.kernels, self.dilations, offsets, strict=False):
                taps = _window_index(h, w, k, d, self.stride, k * k)
                index.append(torch.where(taps == k * k, missing, taps + offset))
            self._index[key] = torch.stack(index).to(device)
        return self._index[key]

    @staticmethod
    def _padded(kernel: torch.Tensor, size: int) -> torch.Tensor:
        pad = (size - kernel.shape[-1]) // 2
        return F.pad(kernel, (pad,) * 4) if pad else kernel


class _PlainCopy(torch.autograd.Function):
    """``x.contiguous()`` whose gradient goes back in ``x``'s layout: the CPU pooling
    backward kernels on channels_last inputs are 3-10x slower when the output gradient is
    in another layout (3x3 average pooling of 16x16x16x16: 544 us against 80 us, one
    thread; the copy costs 18 us)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor):
        ctx.layout = (
            torch.channels_last
            if x.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        return x.contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.contiguous(memory_format=ctx.layout)


class _Pools(nn.Module):
    """3x3 max and average pooling (``count_include_pad=False``) + BatchNorm."""

    def __init__(self, c: int, stride: int, edges: int, names: Sequence[str]) -> None:
        super().__init__()
        self.c, self.stride, self.edges, self.names = c, stride, edges, list(names)
        self.bn = nn.BatchNorm2d(len(self.names) * edges * c, affine=False)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, repeat: int) -> torch.Tensor:
        """``x``: ``[N, S, C, H, W]``, edge ``e`` reads input ``e % S`` (``S * repeat``
        edges); returns ``[N, pools, edges, C, H', W']``. Pooling has no parameters, so each
        distinct input is pooled once."""
        n, s, c, h, w = x.shape
        # CPU pooling kernels are several times faster on channels_last; the results are
        # brought back to the plain layout, so every value (and gradient) is bitwise the same.
        flat = x.reshape(n, -1, h, w).contiguous(memory_format=torch.channels_last)
        pooled = [
            _PlainCopy.apply(
                F.max_pool2d(flat, 3, self.stride, 1)
                if name == "max_pool_3x3"
                else F.avg_pool2d(flat, 3, self.stride, 1, count_include_pad=False)
            )
            for name in self.names
        ]
        h_out, w_out = pooled[0].shape[-2:]
        p, pixels = len(self.names), h_out * w_out
        y = torch.stack(pooled, dim=1)  # [N, pools, S * C, H', W']
        if self.training and repeat > 1:
            # Copies of one input share their batch statistics: normalise each input
            # once, weight it per edge.
            normed = _shared_batch_norm(self.bn, y.reshape(n, -1, h_out, w_out), p, repeat)
            weighted = normed.view(n, p, 1, s, c, pixels) * scale.view(p, repeat, s, c, 1)
            return weighted.view(n, p, self.edges, c, h_out, w_out)
        if repeat > 1:
            y = y.unsqueeze(2).expand(-1, -1, repeat, -1, -1, -1)
        y = _batch_norm(self.bn, y.reshape(n, -1, h_out, w_out), scale, self.training)
        return y.view(n, p, self.edges, c, h_out, w_out)


def _shared_batch_norm(
    bn: nn.BatchNorm2d, x: torch.Tensor, groups: int, repeat: int
) -> torch.Tensor:
    """Training-mode ``BN(x)`` (no affine) for ``bn``'s channels ``[groups, repeat, width]``,
    whose inputs are ``x``'s channels ``[groups, width]``, each copied ``repeat`` times:
    every copy is normalised alike, and its running statistics move by ``x``'s."""
    assert bn.running_mean is not None and bn.running_var is not None  # tracked stats
    momentum = 0.1 if bn.momentum is None else bn.momentum  # nn.BatchNorm2d's default
    # momentum 1 on fresh buffers leaves exactly the batch mean and unbiased variance
    mean = bn.running_mean.new_zeros(x.shape[1])
    var = bn.running_var.new_ones(x.shape[1])
    normed = batch_norm(x, mean, var, None, True, 1.0, bn.eps)
    with torch.no_grad():
        for running, batch in ((bn.running_mean, mean), (bn.running_var, var)):
            grouped = running.view(groups, repeat, -1)
            grouped.mul_(1 - momentum).add_(batch.view(groups, 1, -1), alpha=momentum)
    return normed


class FusedMixedOps(nn.Module):
    """``E`` supernet edges of equal width and stride, each ``sum_k w_k op_k(x_e)``
    over ``primitives`` as :class:`~search_spaces.operations.MixedOp`, evaluated together.

    Args:
        c: channels (in and out) of every edge.
        stride: 1, or 2 on the input edges of reduction cells.
        edges: number of edges ``E``.
        primitives: candidate operations (any subset of the seven ARNAS ones).

    >>> import torch
    >>> from search_spaces.operations import MixedOp
    >>> plain = [MixedOp(4, 1).double() for _ in range(2)]
    >>> fused = FusedMixedOps(4, 1, edges=2).double()
    >>> fused.copy_from(plain)
    >>> x = torch.rand(3, 2, 4, 8, 8, dtype=torch.float64)
    >>> w = torch.rand(2, 7, dtype=torch.float64)
    >>> expected = torch.stack([op(x[:, i], w[i]) for i, op in enumerate(plain)], dim=1)
    >>> bool(torch.allclose(fused(x, w), expected, atol=1e-12))
    True
    """

    scale_index: torch.Tensor

    def __init__(
        self, c: int, stride: int, edges: int = 1, primitives: Sequence[str] = PRIMITIVES
    ) -> None:
        super().__init__()
        self.c, self.stride, self.edges = c, stride, edges
        self.primitives = tuple(primitives)
        position = {name: i for i, name in enumerate(self.primitives)}
        sep = [n for n in self.primitives if n.startswith("sep_conv")]
        dil = [n for n in self.primitives if n.startswith("dil_conv")]
        pools = [n for n in self.primitives if n in ("max_pool_3x3", "avg_pool_3x3")]
        unknown = set(self.primitives) - set(sep) - set(dil) - set(pools) - {"skip_connect"}
        if unknown:
            raise ValueError(f"FusedMixedOps cannot fuse operations {sorted(unknown)}")
        self.sep, self.dil, self.pool_names = sep, dil, pools
        first = [(_kernel_size(n), 1) for n in sep] + [(_kernel_size(n), 2) for n in dil]
        self.stage1 = _Stage(c, stride, edges, first) if first else None
        self.stage2 = _Stage(c, 1, edges, [(_kernel_size(n), 1) for n in sep]) if sep else None
        self.pools = _Pools(c, stride, edges, pools) if pools else None
        self.skip = position.get("skip_connect")
        self.reduce: nn.Parameter | None = None
        if self.skip is not None and stride == 2:
            if c % 2:
                raise ValueError(f"FactorizedReduce needs an even output width, got {c}")
            self.reduce = nn.Parameter(_uniform_(torch.empty(edges, 2, c // 2, c), c))
            self.reduce_bn = nn.BatchNorm2d(edges * c, affine=False)
        # Each BatchNorm channel (branch, edge, c) is scaled by weights[edge, op];
        # a sep_conv's inner BatchNorm by 1 (the slot after the weights).
        n_ops = len(self.primitives)
        one = edges * n_ops
        groups: list[list[int | None]] = [
            [None] * len(sep) + [position[n] for n in dil],
            [position[n] for n in sep],
            [position[n] for n in pools],
        ]
        if self.reduce is not None:
            groups.append([self.skip])
        index: list[int] = []
        self.split_sizes: list[int] = []
        for ops in groups:
            for op in ops:
                for e in range(edges):
                    index += [one if op is None else e * n_ops + op] * c
            self.split_sizes.append(len(ops) * edges * c)
        self.register_buffer(
            "scale_index", torch.tensor(index, dtype=torch.long), persistent=False
        )

    def forward(self, x: torch.Tensor, weights: torch.Tensor, repeat: int = 1) -> torch.Tensor:
        """``x``: ``[N, S, C, H, W]`` with ``S * repeat = E``, edge ``e`` reading input
        ``e % S`` (a cell's edges leaving one state read it alike); ``weights``:
        ``[E, len(primitives)]`` (softmaxed alphas); returns ``[N, E, C, H', W']``."""
        n, s, c, h, w = x.shape
        e = self.edges
        if s * repeat != e:
            raise ValueError(f"{s} inputs x {repeat} copies do not make {e} edges")
        flat_weights = torch.cat([weights.flatten(), weights.new_ones(1)])
        scales = flat_weights[self.scale_index].split(self.split_sizes)
        h_out, w_out = _out_size(h, self.stride), _out_size(w, self.stride)
        blocks: list[torch.Tensor] = []  # [N, b, E, C, H', W'], summed over b
        relu = F.relu(x) if self.stage1 is not None or self.reduce is not None else None
        if self.stage1 is not None:
            assert relu is not None
            shared = relu.repeat(1, repeat, 1, 1, 1) if repeat > 1 else relu
            y_sep, y_dil = _split_branches(self.stage1(shared, scales[0]), len(self.sep))
            blocks += y_dil
            if self.stage2 is not None:
                blocks += self.stage2([F.relu(y) for y in y_sep], scales[1])
        if self.pools is not None:
            blocks.append(self.pools(x, scales[2], repeat))
        out = None
        for block in blocks:
            total = block.sum(1) if block.shape[1] > 1 else block.squeeze(1)
            out = total if out is None else out + total
        if self.skip is not None:
            if self.reduce is None:
                skip = x.unsqueeze(1) * weights[:, self.skip].view(1, repeat, s, 1, 1, 1)
                skip = skip.reshape(n, e, c, h, w)  # a view unless x is channels_last
            else:
                assert relu is not None  # computed whenever there is a reduce
                skip = self._factorized_reduce(relu, scales[3], repeat, h_out, w_out)
            out = skip if out is None else out + skip
        assert out is not None  # every supported primitive set has at least one operation
        return out

    def _factorized_reduce(
        self, relu: torch.Tensor, scale: torch.Tensor, repeat: int, h_out: int, w_out: int
    ) -> torch.Tensor:
        """DARTS' factorized reduce: two offset stride-2 1x1 convs, as one matmul."""
        n, s, c = relu.shape[:3]
        shifted = F.pad(relu, (0, 1, 0, 1))[..., 1::2, 1::2]
        pair = torch.stack([relu[..., ::2, ::2], shifted], dim=2).reshape(
            n, s, 2, c, h_out * w_out
        )
        if repeat > 1:
            pair = pair.repeat(1, repeat, 1, 1, 1)
        assert self.reduce is not None
        y = torch.matmul(self.reduce, pair).view(n, self.edges * c, h_out, w_out)
        y = _batch_norm(self.reduce_bn, y, scale, self.training)
        return y.reshape(n, self.edges, c, h_out, w_out)

    @torch.no_grad()
    def copy_from(self, plain: Sequence[MixedOp]) -> None:
        """Take the weights and BatchNorm statistics of ``E`` equivalent :class:`MixedOp` edges."""
        if len(plain) != self.edges:
            raise ValueError(f"expected {self.edges} MixedOp edges, got {len(plain)}")
        ops: list[dict[str, Any]] = [
            dict(zip(self.primitives, edge.ops, strict=True)) for edge in plain
        ]
        c = self.c

        def put(stage: _Stage | None, blocks: list[list[Any]]) -> None:
            """``blocks[b][e]``: a DilConv (ReLU, depthwise, pointwise, BN) of branch b, edge e."""
            if stage is None:
                return
            depthwise = cast("list[torch.Tensor]", stage.depthwise)
            for b, per_edge in enumerate(blocks):
                for e, block in enumerate(per_edge):
                    depthwise[b][e * c : (e + 1) * c].copy_(block[1].weight)
                    stage.pointwise[b, e].copy_(block[2].weight.flatten(1))
            _copy_statistics(stage.bn, [block[3] for per_edge in blocks for block in per_edge])

        put(
            self.stage1,
            [[o[n][0] for o in ops] for n in self.sep] + [[o[n] for o in ops] for n in self.dil],
        )
        put(self.stage2, [[o[n][1] for o in ops] for n in self.sep])
        if self.pools is not None:
            _copy_statistics(self.pools.bn, [o[n][1] for n in self.pool_names for o in ops])
        if self.reduce is not None:
            for e, o in enumerate(ops):
                self.reduce[e, 0].copy_(o["skip_connect"].conv_1.weight.flatten(1))
                self.reduce[e, 1].copy_(o["skip_connect"].conv_2.weight.flatten(1))
            _copy_statistics(self.reduce_bn, [o["skip_connect"].bn for o in ops])


def _copy_statistics(target: nn.BatchNorm2d, sources: Sequence[Any]) -> None:
    assert target.running_mean is not None and target.running_var is not None  # tracked stats
    target.running_mean.copy_(torch.cat([s.running_mean for s in sources]))
    target.running_var.copy_(torch.cat([s.running_var for s in sources]))
