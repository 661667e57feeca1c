"""Benchmark one full ARNAS search step against a straightforward baseline.

One step = PGD-7 on the training batch + PGD-7 on the search batch + the
second-order MGDA architecture step + the weight step. Measures, on the current
device, the median step time, the peak memory and the FLOPs per step
(``torch.utils.flop_counter``) for:

* ``arnas_ray``: :meth:`arnas_ray.search.ArnasSearch.step`;
* ``baseline``: the straightforward implementation of the authors' structure,
  written here only as the reference: it recomputes the unrolled model for
  each objective on a deep copy of the supernet, backpropagates into every
  parameter (``loss.backward()``) in the attacks and the unrolled passes, and
  perturbs the live weights in place for the Hessian-vector products.

Both start from the same state and RNG; the script checks that they produce
the same alpha update ("equal numerics") before timing.

Usage::

    python benchmarks/search_step.py                 # CPU-sized config
    python benchmarks/search_step.py --preset paper  # 8 cells, 24 channels, batch 32, 32x32
    python benchmarks/search_step.py --precision bf16 --preset paper   # CUDA
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode

from arnas_ray.mgda import two_objective_gamma
from arnas_ray.search import ArnasSearch, SearchConfig

PRESETS = {
    "cpu": {"space": {"layers": 5, "init_channels": 8, "nodes": 2}, "batch_size": 16, "image_size": 16},
    "paper": {"space": {"layers": 8, "init_channels": 24, "nodes": 4}, "batch_size": 32, "image_size": 32},
}


class BaselineStep:
    """The straightforward reference step (not used by the library)."""

    def __init__(self, search: ArnasSearch) -> None:
        self.s = search

    def _pgd(self, x, y, eps, step, steps):
        model = self.s.model
        x_adv = (x + (2 * torch.rand_like(x) - 1) * eps).clamp(0, 1)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = F.cross_entropy(self.s._forward(x_adv).float(), y)
            loss.backward()  # also fills every parameter's .grad
            x_adv = x_adv.detach() + step * x_adv.grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
        model.zero_grad(set_to_none=True)
        return x_adv.detach()

    def _unrolled(self, x, y, lr):
        s = self.s
        model, opt = s.model, s.weight_optimizer
        loss = F.cross_entropy(s._forward(x).float(), y)
        grads = torch.autograd.grad(loss, model.weights())
        new = copy.deepcopy(model)
        with torch.no_grad():
            for (p_new, p), g in zip(zip(new.weights(), model.weights()), grads):
                d = g + s.config.weight_decay * p
                buf = opt.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    d = d + s.config.momentum * buf
                p_new.copy_(p - lr * d)
        return new

    def _hvp(self, vector, x, y):
        s = self.s
        model = s.model
        alphas = list(model.arch_parameters().values())
        r = s.config.unroll_r / torch.cat([v.flatten() for v in vector]).norm()
        with torch.no_grad():
            for p, v in zip(model.weights(), vector):
                p.add_(v, alpha=float(r))
        grads_p = torch.autograd.grad(F.cross_entropy(model(x), y), alphas)
        with torch.no_grad():
            for p, v in zip(model.weights(), vector):
                p.sub_(v, alpha=2 * float(r))
        grads_n = torch.autograd.grad(F.cross_entropy(model(x), y), alphas)
        with torch.no_grad():
            for p, v in zip(model.weights(), vector):
                p.add_(v, alpha=float(r))
        return [(a - b) / (2 * r) for a, b in zip(grads_p, grads_n)]

    def _objective(self, x_adv, y, xs, ys, scale, lr):
        unrolled = self._unrolled(x_adv, y, lr)
        with self.s._autocast():
            logits = unrolled(xs)
        loss = scale * F.cross_entropy(logits.float(), ys)
        loss.backward()
        dalpha = [a.grad for a in unrolled.arch_parameters().values()]
        vector = [w.grad for w in unrolled.weights()]
        implicit = self._hvp(vector, x_adv, y)
        return [d - lr * h for d, h in zip(dalpha, implicit)]

    def step(self, train_batch, search_batch):
        s, cfg = self.s, self.s.config
        (x, y), (xs, ys) = train_batch, search_batch
        s.model.train()
        lr = s.lr
        x_adv = self._pgd(x, y, cfg.attack_eps, cfg.attack_step_size, cfg.attack_steps)
        xs_adv = self._pgd(xs, ys, cfg.search_attack_eps, cfg.search_attack_step_size, cfg.search_attack_steps)
        s.arch_optimizer.zero_grad(set_to_none=True)
        g_nat = self._objective(x_adv, y, xs, ys, 1.0, lr)
        g_adv = self._objective(x_adv, y, xs_adv, ys, cfg.regularization_coefficient, lr)
        gamma = float(two_objective_gamma(torch.cat([g.flatten() for g in g_nat]),
                                          torch.cat([g.flatten() for g in g_adv])))
        for a, gn, ga in zip(s.model.arch_parameters().values(), g_nat, g_adv):
            a.grad = gamma * gn + (1 - gamma) * ga
        s.arch_optimizer.step()
        s.weight_optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(s._forward(x_adv).float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(s.model.weights(), cfg.grad_clip)
        s.weight_optimizer.step()
        return {"loss": float(loss), "gamma": gamma}


class GlobalFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` without per-module attribution: its module hooks reject
    ``torch.autograd.grad`` with respect to leaf tensors, which the engine uses."""

    def __enter__(self):
        self.flop_counts.clear()
        self.mode = _FlopCounterMode(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args):
        result = self.mode.__exit__(*args)
        self.mode = None
        return result


def build(args) -> tuple[ArnasSearch, tuple, tuple]:
    preset = PRESETS[args.preset]
    config = SearchConfig(
        dataset="digits", image_size=preset["image_size"], batch_size=preset["batch_size"],
        epochs=10, device=args.device, precision=args.precision, channels_last=args.channels_last,
        data_limit=400, seed=0,
    )  # fmt: skip
    search = ArnasSearch(config, preset["space"])
    loader_train, loader_search = search._loaders()
    train = search._to_device(*next(iter(loader_train)), False)
    search_batch = search._to_device(*next(iter(loader_search)), False)
    # One real step so that SGD momentum buffers exist (the virtual step uses them).
    search.step(train, search_batch)
    return search, train, search_batch


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_equal_numerics(args) -> float:
    """Max |alpha difference| after one step of each implementation from one state."""
    results = []
    for name in ("arnas_ray", "baseline"):
        search, train, sb = build(args)
        torch.manual_seed(123)
        if name == "arnas_ray":
            search.step(train, sb)
        else:
            BaselineStep(search).step(train, sb)
        results.append(torch.cat([a.detach().flatten() for a in search.model.arch_parameters().values()]))
    return float((results[0] - results[1]).abs().max())


def interleaved_times(args) -> dict[str, float]:
    """Median step time of each implementation, steps alternating in one process
    (noise on a shared CPU hits both alike)."""
    ours, train, sb = build(args)
    theirs, train_b, sb_b = build(args)
    runs = {"arnas_ray": lambda: ours.step(train, sb), "baseline": lambda: BaselineStep(theirs).step(train_b, sb_b)}
    for _ in range(args.warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.steps):
        for name, run in runs.items():
            _sync(ours.device)
            start = time.perf_counter()
            run()
            _sync(ours.device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(args) -> dict:
    search, train, sb = build(args)
    device = search.device
    run = search.step if args.impl == "arnas_ray" else BaselineStep(search).step
    for _ in range(args.warmup):
        run(train, sb)
    _sync(device)
    with GlobalFlopCounter(display=False) as counter:
        run(train, sb)
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_mem = torch.cuda.memory_allocated(device)
    times = []
    for _ in range(args.steps):
        _sync(device)
        start = time.perf_counter()
        run(train, sb)
        _sync(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base_mem
        memory_kind = "CUDA peak allocated above model+optimizer state"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        memory_kind = "process peak RSS"
    median = statistics.median(times)
    return {
        "impl": args.impl, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "median_s": median, "peak_bytes": peak, "memory_kind": memory_kind,
        "gflop_per_step": flops / 1e9, "gflops": flops / 1e9 / median,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--impl", choices=("arnas_ray", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print one JSON line per implementation")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    if args.impl:  # child process: one implementation, so peak memory is its own
        print(json.dumps(measure(args)))
        return
    diff = check_equal_numerics(args)
    print(f"preset {args.preset}: {PRESETS[args.preset]}, precision {args.precision}")
    print(f"equal numerics: max |alpha(arnas_ray) - alpha(baseline)| after one step = {diff:.2e}")
    rows = {}
    for impl in ("baseline", "arnas_ray"):  # separate processes: each peak memory is its own
        cmd = [sys.executable, __file__, *sys.argv[1:], "--impl", impl, "--steps", "1"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows[impl] = json.loads(out.strip().splitlines()[-1])
    medians = interleaved_times(args)
    for impl, row in rows.items():
        row["median_s"] = medians[impl]
        row["gflops"] = row["gflop_per_step"] / medians[impl]
        print(f"{impl:>10}: {row['median_s']*1000:8.1f} ms/step  {row['peak_bytes']/2**20:8.1f} MiB "
              f"({row['memory_kind']})  {row['gflop_per_step']:7.2f} GFLOP/step  "
              f"{row['gflops']:7.2f} GFLOP/s  [{row['device_name']}]")  # fmt: skip
    b, a = rows["baseline"], rows["arnas_ray"]
    print(f"ratio arnas_ray/baseline: time {a['median_s']/b['median_s']:.2f}, "
          f"peak memory {a['peak_bytes']/b['peak_bytes']:.2f}, FLOPs {a['gflop_per_step']/b['gflop_per_step']:.2f}")
    if args.json:
        print(json.dumps({"equal_numerics_max_abs": diff, **{k: v for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
