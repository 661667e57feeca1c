"""Benchmark one full ARNAS search step against the authors' structure.

One step = PGD on the training batch + PGD on the search batch + the
second-order MGDA architecture step + the weight step. Measures, on the current
device, the median step time (implementations interleaved step by step in one
process, so machine noise hits all alike), the peak memory (each implementation
in its own process) and the FLOPs per step (``torch.utils.flop_counter``) of:

* ``baseline``: the straightforward implementation of the authors' structure,
  written here only as the reference: plain edges (one module per operation),
  the unrolled model recomputed for each objective on a deep copy of the
  supernet, ``loss.backward()`` into every parameter in the attacks and the
  unrolled passes, the live weights perturbed in place for the Hessian-vector
  products;
* ``plain``: :meth:`arnas_ray.search.ArnasSearch.step` with plain edges;
* ``fused``: the same with fused edges (the default);
* ``fused-bf16``: fused edges under bf16 autocast (CUDA only);
* ``fused-compile``: fused edges with ``torch.compile`` (``compile: true``).

All start from the same weights, optimiser state and RNG; the script first
checks that every implementation produces the same alpha update as the
baseline ("equal numerics"; bf16 within its rounding).

Usage::

    python benchmarks/search_step.py                        # CPU preset
    python benchmarks/search_step.py --preset tiny          # the default job's search
    python benchmarks/search_step.py --preset compute       # 4 nodes at 32x32: more arithmetic
    python benchmarks/search_step.py --preset paper --impls baseline,fused,fused-bf16  # CUDA
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
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.flop_counter import _FlopCounterMode

from arnas_ray.search import ArnasSearch
from arnas_ray.search import SearchConfig
from arnas_ray.search.mgda import two_objective_gamma

PRESETS = {
    "cpu": {
        "space": {"layers": 5, "init_channels": 8, "nodes": 2},
        "batch_size": 16,
        "image_size": 16,
        "steps": 7,
    },
    "tiny": {
        "space": {"layers": 5, "init_channels": 8, "nodes": 2},
        "batch_size": 32,
        "image_size": 8,
        "steps": 3,
    },
    "compute": {  # a more compute-bound shape of issue 23: 4 nodes, 32x32
        "space": {"layers": 5, "init_channels": 8, "nodes": 4},
        "batch_size": 16,
        "image_size": 32,
        "steps": 7,
    },
    "paper": {
        "space": {"layers": 8, "init_channels": 24, "nodes": 4},
        "batch_size": 32,
        "image_size": 32,
        "steps": 7,
    },
}
IMPLS = ("baseline", "plain", "fused", "fused-bf16", "fused-compile")


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
        train, search = cfg.train_attack, cfg.search_attack
        x_adv = self._pgd(x, y, train.eps, train.step_size, train.steps)
        xs_adv = self._pgd(xs, ys, search.eps, search.step_size, search.steps)
        s.arch_optimizer.zero_grad(set_to_none=True)
        g_nat = self._objective(x_adv, y, xs, ys, 1.0, lr)
        g_adv = self._objective(x_adv, y, xs_adv, ys, cfg.regularization_coefficient, lr)
        gamma = float(
            two_objective_gamma(
                torch.cat([g.flatten() for g in g_nat]), torch.cat([g.flatten() for g in g_adv])
            )
        )
        for a, gn, ga in zip(s.model.arch_parameters().values(), g_nat, g_adv):
            a.grad = gamma * gn + (1 - gamma) * ga
        s.arch_optimizer.step()
        s.weight_optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(s._forward(x_adv).float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(s.model.weights(), cfg.grad_clip)
        s.weight_optimizer.step()
        return {"loss": float(loss.detach()), "gamma": gamma}


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


def _config(args, impl: str) -> SearchConfig:
    preset = PRESETS[args.preset]
    return SearchConfig(
        dataset="digits",
        image_size=preset["image_size"],
        batch_size=preset["batch_size"],
        epochs=10,
        device=args.device,
        channels_last=args.channels_last,
        data_limit=400,
        seed=0,
        train_attack={"steps": preset["steps"]},
        search_attack={"steps": preset["steps"]},
        edge_impl="plain" if impl in ("baseline", "plain") else "fused",
        precision="bf16" if impl.endswith("bf16") else "fp32",
        compile=impl.endswith("compile"),
    )


def _reference(args) -> tuple[ArnasSearch, tuple, tuple]:
    """The common starting point: a plain-edge search after one real step (so that
    SGD momentum buffers exist: the virtual step uses them)."""
    search = ArnasSearch(_config(args, "plain"), PRESETS[args.preset]["space"])
    loader_train, loader_search = search._loaders()
    train = search._to_device(*next(iter(loader_train)), False)
    search_batch = search._to_device(*next(iter(loader_search)), False)
    search.step(train, search_batch)
    return search, train, search_batch


@torch.no_grad()
def _as_fused_state(reference: ArnasSearch, target: ArnasSearch) -> None:
    """Weights, statistics and SGD momentum of ``reference`` (plain edges) in ``target``."""
    target.model.copy_from(reference.model)
    holder = copy.deepcopy(reference.model)
    converted = copy.deepcopy(target.model)
    momentum = reference.weight_optimizer.state
    for (_name, p), q in zip(holder.named_weights(), reference.model.weights(), strict=True):
        p.copy_(momentum[q]["momentum_buffer"])
    converted.copy_from(holder)
    for p, buffer in zip(target.model.weights(), converted.weights(), strict=True):
        target.weight_optimizer.state[p]["momentum_buffer"] = buffer.detach().clone()


def build(args, impl: str) -> tuple[ArnasSearch, tuple, tuple]:
    """A search of implementation ``impl`` in the reference state (same RNG too)."""
    reference, train, search_batch = _reference(args)
    if impl in ("baseline", "plain"):
        search = reference
    else:
        search = ArnasSearch(
            _config(args, impl), PRESETS[args.preset]["space"], splits=reference.splits
        )
        _as_fused_state(reference, search)
        search.arch_optimizer.load_state_dict(reference.arch_optimizer.state_dict())
        search.scheduler.load_state_dict(reference.scheduler.state_dict())
    return search, train, search_batch


def _runner(impl: str, search: ArnasSearch):
    step = BaselineStep(search).step if impl == "baseline" else search.step
    return lambda train, search_batch: step(train, search_batch)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_equal_numerics(args, impls) -> dict[str, float]:
    """Max |alpha(impl) - alpha(baseline)| after one step from the same state."""
    alphas = {}
    for impl in impls:
        search, train, search_batch = build(args, impl)
        torch.manual_seed(123)
        _runner(impl, search)(train, search_batch)
        alphas[impl] = torch.cat(
            [a.detach().flatten() for a in search.model.arch_parameters().values()]
        )
    reference = alphas.get("baseline", next(iter(alphas.values())))
    return {impl: float((a - reference).abs().max()) for impl, a in alphas.items()}


def interleaved_times(args, impls) -> tuple[dict[str, float], dict[str, float]]:
    """Median step time of each implementation, steps alternating in one process
    (noise on a shared machine hits all alike), and the time of the warm-up steps."""
    runs = {}
    for impl in impls:
        search, train, search_batch = build(args, impl)
        run = _runner(impl, search)
        runs[impl] = (lambda r=run, t=train, b=search_batch: r(t, b), search.device)
    warmups = dict.fromkeys(runs, 0.0)
    for _ in range(args.warmup):  # includes torch.compile's compilation
        for impl, (run, device) in runs.items():
            start = time.perf_counter()
            run()
            _sync(device)
            warmups[impl] += time.perf_counter() - start
    times: dict[str, list[float]] = {impl: [] for impl in runs}
    for _ in range(args.steps):
        for impl, (run, device) in runs.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            times[impl].append(time.perf_counter() - start)
    return {impl: statistics.median(values) for impl, values in times.items()}, warmups


def measure(args) -> dict:
    """One implementation alone: peak memory and FLOPs of one step."""
    search, train, search_batch = build(args, args.impl)
    device = search.device
    run = _runner(args.impl, search)
    for _ in range(args.warmup):
        run(train, search_batch)
    _sync(device)
    flops = float("nan")
    if not args.impl.endswith("compile"):
        with GlobalFlopCounter(display=False) as counter:
            run(train, search_batch)
        flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base_mem = torch.cuda.memory_allocated(device)
    run(train, search_batch)
    _sync(device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base_mem
        memory_kind = "CUDA peak allocated above model+optimizer state"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        memory_kind = "process peak RSS"
    return {
        "impl": args.impl,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "peak_bytes": peak,
        "memory_kind": memory_kind,
        "gflop_per_step": flops / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--impls", default="baseline,plain,fused", help=f"comma-separated, from {', '.join(IMPLS)}"
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON line with every figure"
    )
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="skip the equal-numerics check and the per-process memory and FLOPs",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.impl:  # child process: one implementation, so peak memory is its own
        print(json.dumps(measure(args)))
        return
    impls = [i for i in args.impls.split(",") if i]
    unknown = sorted(set(impls) - set(IMPLS))
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; choose from {', '.join(IMPLS)}")
    preset = PRESETS[args.preset]
    print(f"preset {args.preset}: {preset}; threads {args.threads}")
    if args.timing_only:
        diffs = dict.fromkeys(impls, float("nan"))
        rows = {
            impl: {
                "peak_bytes": float("nan"),
                "memory_kind": "not measured",
                "gflop_per_step": float("nan"),
                "device_name": "",
            }
            for impl in impls
        }
    else:
        diffs = check_equal_numerics(args, impls)
        print(
            "equal numerics, max |alpha(impl) - alpha(baseline)| after one step: "
            + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()),
            flush=True,
        )
        rows = {}
        for impl in impls:  # separate processes: each peak memory is its own
            cmd = [sys.executable, __file__, *sys.argv[1:], "--impl", impl]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows[impl] = json.loads(out.strip().splitlines()[-1])
    medians, warmups = interleaved_times(args, impls)
    reference = rows[impls[0]]
    for impl, row in rows.items():
        row["median_s"] = medians[impl]
        row["alpha_max_abs_diff"] = diffs[impl]
        row["first_steps_s"] = warmups[impl]
        print(
            f"{impl:>14}: {row['median_s'] * 1000:9.1f} ms/step  "
            f"{row['peak_bytes'] / 2**20:9.1f} MiB "
            f"({row['memory_kind']})  {row['gflop_per_step']:8.2f} GFLOP/step  "
            f"first {args.warmup} steps {row['first_steps_s']:.1f}s  [{row['device_name']}]",
            flush=True,
        )
    for impl, row in rows.items():
        if impl != impls[0]:
            print(
                f"ratio {impl}/{impls[0]}: time {row['median_s'] / reference['median_s']:.2f}, "
                f"peak memory {row['peak_bytes'] / reference['peak_bytes']:.2f}"
            )
    if args.json:
        print(json.dumps({"preset": args.preset, "rows": rows}))


if __name__ == "__main__":
    main()
