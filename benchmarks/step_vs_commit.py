"""Time the search step of this tree against an earlier commit's, on one preset.

Checks the commit out into a temporary git worktree and runs the same timing
snippet alternately in the two trees (separate processes, one thread each,
rounds interleaved so machine noise hits both alike): build an
:class:`~arnas_ray.search.ArnasSearch` of the preset, take one batch, run
``--warmup`` steps, time ``--steps`` steps, report the median. Only keys that
both versions know are used.

Usage::

    python benchmarks/step_vs_commit.py --commit 7f48d6b --preset tiny --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The presets of benchmarks/search_step.py; PGD steps as the flat keys of trees before the
#: nested attack config (``SNIPPET`` nests them for trees that have it).
PRESETS = {
    "tiny": {
        "image_size": 8,
        "batch_size": 32,
        "attack_steps": 3,
        "search_attack_steps": 3,
        "space": {"layers": 5, "init_channels": 8, "nodes": 2},
    },
    "cpu": {
        "image_size": 16,
        "batch_size": 16,
        "attack_steps": 7,
        "search_attack_steps": 7,
        "space": {"layers": 5, "init_channels": 8, "nodes": 2},
    },
    "compute": {
        "image_size": 32,
        "batch_size": 16,
        "attack_steps": 7,
        "search_attack_steps": 7,
        "space": {"layers": 5, "init_channels": 8, "nodes": 4},
    },
}

SNIPPET = """
import json, statistics, sys, time, torch
torch.set_num_threads(1)
import arnas_ray
from arnas_ray.search import ArnasSearch, SearchConfig
preset = json.loads(sys.argv[1]); steps, warmup = int(sys.argv[2]), int(sys.argv[3])
space = preset.pop("space")
if "train_attack" in SearchConfig.model_fields:  # a tree with the nested attack config
    preset["train_attack"] = {"steps": preset.pop("attack_steps")}
    preset["search_attack"] = {"steps": preset.pop("search_attack_steps")}
config = SearchConfig(dataset="digits", data_limit=400, epochs=10, device="cpu", seed=0, **preset)
search = ArnasSearch(config, space)
train_loader, search_loader = search._loaders()
train = search._to_device(*next(iter(train_loader)), False)
batch = search._to_device(*next(iter(search_loader)), False)
for _ in range(warmup):
    search.step(train, batch)
times = []
for _ in range(steps):
    start = time.perf_counter()
    search.step(train, batch)
    times.append(time.perf_counter() - start)
print(json.dumps({"median_s": statistics.median(times), "module": arnas_ray.__file__}))
"""


def time_tree(tree: Path, preset: dict, steps: int, warmup: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, json.dumps(preset), str(steps), str(warmup)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if not result["module"].startswith(str(tree)):
        raise RuntimeError(f"timed the wrong tree: {result['module']} is not under {tree}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commit", default="7f48d6b", help="the earlier commit")
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--rounds", type=int, default=4, help="alternating runs per tree")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arnas-commit-") as tmp:
        old = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.commit],
            check=True,
            capture_output=True,
        )
        try:
            medians: dict[str, list[float]] = {"commit": [], "this tree": []}
            for round_ in range(args.rounds):
                for name, tree in (("commit", old), ("this tree", ROOT)):
                    result = time_tree(tree, dict(PRESETS[args.preset]), args.steps, args.warmup)
                    medians[name].append(result["median_s"])
                print(
                    f"round {round_ + 1}: commit {medians['commit'][-1] * 1000:.0f} ms, this tree "
                    f"{medians['this tree'][-1] * 1000:.0f} ms, ratio "
                    f"{medians['this tree'][-1] / medians['commit'][-1]:.2f}",
                    flush=True,
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False
            )
    a, b = statistics.median(medians["commit"]), statistics.median(medians["this tree"])
    print(
        f"preset {args.preset}: commit {args.commit} {a * 1000:.0f} ms/step, this tree "
        f"{b * 1000:.0f} ms/step, "
        f"ratio {b / a:.2f} (median over {args.rounds} alternating rounds of {args.steps} steps)"
    )


if __name__ == "__main__":
    main()
