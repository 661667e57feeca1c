"""CPU kernels of the fused search step in the plain (NCHW) and channels_last (NHWC) layouts.

Issue 23's lever for the CPU step: the fused edges spend most of their time in depthwise
convolutions, their gradients and BatchNorm on small maps, and the backends' kernels for
these are much faster on channels_last tensors. This times, on one thread, at shapes the
``cpu`` and ``compute`` presets of ``search_step.py`` run (batch 16; a wave's channels are
branches x edges x 8):

* a depthwise convolution forward, and forward + backward (input, or input and weight);
* a stride-2 input gradient as ``conv_transpose2d`` (what :class:`DepthwiseConv` runs);
* BatchNorm (training mode, a per-channel scale) forward + backward;
* the copy that converts a tensor from one layout to the other (what a layout change
  inside one operation would pay twice).

Every time is the median of ``--repeat`` calls after warm-up, in microseconds. Run it on an
idle machine: the kernels are memory-bound, and another process halves the figures.

    python benchmarks/kernel_layout.py
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

#: (channels, map size, kernel, dilation, stride) of depthwise calls in the two presets.
CONVS = [
    (64, 16, 3, 1, 1),
    (64, 16, 5, 2, 1),
    (64, 16, 3, 1, 2),
    (64, 8, 5, 1, 1),
    (128, 32, 3, 1, 1),
    (128, 32, 5, 2, 1),
    (128, 32, 5, 1, 2),
]
#: (channels, map size) of BatchNorm calls.
NORMS = [(128, 16), (256, 32)]
BATCH = 16


def _median_us(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _backward(
    fn: Callable[[], torch.Tensor], inputs: tuple[torch.Tensor, ...], grad: torch.Tensor
) -> Callable[[], object]:
    """Forward and backward of ``fn`` into ``inputs`` only."""
    return lambda: torch.autograd.grad(fn(), inputs, grad)


def _layout(x: torch.Tensor, last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last if last else torch.contiguous_format)


def conv_rows(repeat: int) -> list[dict]:
    rows = []
    for c, size, k, dilation, stride in CONVS:
        padding = dilation * (k - 1) // 2
        row: dict = {"op": "depthwise", "shape": [BATCH, c, size, size], "k": k}
        row |= {"dilation": dilation, "stride": stride}
        for last in (False, True):
            tag = "nhwc" if last else "nchw"
            x = _layout(torch.randn(BATCH, c, size, size), last).requires_grad_()
            w = torch.randn(c, 1, k, k, requires_grad=True)

            conv = functools.partial(F.conv2d, x, w, None, stride, padding, dilation, c)
            grad = torch.randn_like(conv())
            row[f"{tag}_forward"] = _median_us(conv, repeat)
            row[f"{tag}_backward_x"] = _median_us(_backward(conv, (x,), grad), repeat)
            row[f"{tag}_backward_xw"] = _median_us(_backward(conv, (x, w), grad), repeat)
            if stride == 2:
                g = _layout(grad, last)
                span = dilation * (k - 1) + 1
                extra = [size - ((g.shape[i] - 1) * 2 - 2 * padding + span) for i in (2, 3)]
                transpose = functools.partial(
                    F.conv_transpose2d, g, w.detach(), None, 2, padding, extra, c, dilation
                )
                row[f"{tag}_transpose"] = _median_us(transpose, repeat)
            row[f"{tag}_convert"] = _median_us(
                lambda x=x, last=last: _layout(x.detach(), not last), repeat
            )
        rows.append(row)
    return rows


def norm_rows(repeat: int) -> list[dict]:
    rows = []
    for c, size in NORMS:
        row: dict = {"op": "batch_norm", "shape": [BATCH, c, size, size]}
        for last in (False, True):
            tag = "nhwc" if last else "nchw"
            x = _layout(torch.randn(BATCH, c, size, size), last).requires_grad_()
            scale = torch.rand(c, requires_grad=True)
            mean, var = torch.zeros(c), torch.ones(c)

            norm = functools.partial(F.batch_norm, x, mean, var, scale, None, True, 0.1, 1e-5)
            grad = torch.randn_like(norm())
            row[f"{tag}_forward"] = _median_us(norm, repeat)
            row[f"{tag}_backward"] = _median_us(_backward(norm, (x, scale), grad), repeat)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = conv_rows(args.repeat) + norm_rows(args.repeat)
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        keys = [k for k in row if k.startswith("nchw_")]
        figures = ", ".join(f"{k[5:]} {row[k]:.0f} -> {row['nhwc_' + k[5:]]:.0f}" for k in keys)
        geometry = {k: row[k] for k in ("k", "dilation", "stride") if k in row}
        print(f"{row['op']} {row['shape']} {geometry}: {figures} us (nchw -> nhwc)")


if __name__ == "__main__":
    main()
