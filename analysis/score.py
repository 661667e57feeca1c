"""``python -m analysis.score``: the attack table of a trained network.

Scores a checkpoint of ``analysis.train`` on its dataset's *test* split:
clean, FGSM, PGD-20, PGD-100 (step 2/255) and AutoAttack, on the same
examples, at the network's training eps unless ``--eps`` says otherwise (the
paper: 8/255 on CIFAR-10). Writes a RobustBench-style JSON next to the
checkpoint (or to ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


from analysis.robustness import ATTACKS, evaluate, robustbench_record, write_record
from analysis.train import load_network
from arnas_ray._cli import HelpFormatter, add_threads_argument, run_cli, set_threads
from arnas_ray.data import load_dataset, make_loader
from arnas_ray.search import resolve_device
from search_spaces.errors import CheckpointError, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.score", description=__doc__,
                                     formatter_class=HelpFormatter)  # fmt: skip
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--checkpoint", type=Path, help="best.pt or last.pt of analysis.train")
    target.add_argument("--sweep", type=Path, help="sweep run directory: score RUN_DIR/final/*/best.pt "
                        "into RUN_DIR/scores/ (shown by analysis.report)")  # fmt: skip
    parser.add_argument("--n-examples", type=int, default=1000, help="test examples (AutoAttack is costly)")
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS, metavar="ATTACK",
                        help=f"subset of: {' '.join(ATTACKS)}")  # fmt: skip
    parser.add_argument("--autoattack-version", default="standard", choices=("standard", "plus", "rand"))
    parser.add_argument("--autoattack-budget", nargs="*", default=[], metavar="ATTR=N",
                        help="cheaper AutoAttack, e.g. apgd.n_iter=10 square.n_queries=100")  # fmt: skip
    parser.add_argument("--eps", type=float, default=None,
                        help="L-inf budget of every attack (default: the network's training eps, "
                        "e.g. 8/255 = 0.0314 for the paper's CIFAR-10 setting)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the attacks' random starts (default: 0)")
    parser.add_argument("--data-root", default=None, help="dataset folder (default: the training run's)")
    parser.add_argument("--out", type=Path, help="JSON path (default: CHECKPOINT's folder/scores.json)")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.sweep is not None:
        checkpoints = sorted((args.sweep / "final").glob("*/best.pt"))
        if not checkpoints:
            raise CheckpointError(f"no trained networks under '{args.sweep / 'final'}'; "
                                  "run python -m analysis.train --sweep RUN_DIR first")  # fmt: skip
        for checkpoint in checkpoints:
            score_one(args, checkpoint, args.sweep / "scores" / f"{checkpoint.parent.name}.json")
        return 0
    score_one(args, args.checkpoint, args.out or args.checkpoint.parent / "scores.json")
    return 0


def score_one(args: argparse.Namespace, checkpoint: Path, out: Path) -> None:
    """Score one checkpoint, print its table and write its JSON record to ``out``."""
    device = resolve_device(args.device)
    model, meta = load_network(checkpoint, device)
    config = meta["config"]
    test = load_dataset(meta["dataset"], args.data_root or config["data_root"], "test", config.get("image_size"))
    loader = make_loader(test, 256, device, order=range(min(args.n_examples, len(test))))
    try:
        budget = {k: int(v) for k, _, v in (item.partition("=") for item in args.autoattack_budget)}
    except ValueError:
        raise ConfigError(f"--autoattack-budget takes ATTR=INTEGER items, got {args.autoattack_budget}") from None
    eps = args.eps if args.eps is not None else float(config.get("attack_eps", 8 / 255))
    scores = evaluate(model, loader, args.attacks, eps=eps, n_examples=args.n_examples,
                      autoattack_version=args.autoattack_version, autoattack_budget=budget or None,
                      seed=args.seed)  # fmt: skip
    name = meta.get("name", checkpoint.parent.name)
    print(f"{name} on {meta['dataset']} test ({int(scores['n_examples'].iloc[0])} examples, Linf eps {eps:.5f}):")
    for row in scores.itertuples():
        print(f"  {row.attack:<11} {row.metric:<15} {row.accuracy:7.2%}")
    record = robustbench_record(scores, model_name=name, dataset=meta["dataset"],
                                autoattack_version=args.autoattack_version)  # fmt: skip
    record["params"] = meta.get("params")
    print(f"wrote {write_record(record, out)}")


if __name__ == "__main__":
    run_cli(main)
