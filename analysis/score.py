"""``python -m analysis.score``: the attack table of a trained network.

Scores a checkpoint of ``analysis.train`` on its dataset's *test* split:
clean, FGSM, PGD-20, PGD-100 (step 2/255) and AutoAttack, on the same
examples, at the network's training eps unless ``--eps`` says otherwise (the
paper: 8/255 on CIFAR-10). Writes a RobustBench-style JSON next to the
checkpoint (or to ``--out``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field

from analysis.checkpoint import checkpoint_spec
from analysis.checkpoint import load_network
from analysis.checkpoint import read_checkpoint
from analysis.robustbench import robustbench_record
from analysis.robustbench import write_record
from analysis.robustness import ATTACKS
from analysis.robustness import evaluate
from arnas_common.cli import ArgumentParser
from arnas_common.cli import add_threads_argument
from arnas_common.cli import check_out_dir
from arnas_common.cli import resolve_path
from arnas_common.cli import run_cli
from arnas_common.cli import set_threads
from arnas_common.config_base import FrozenConfig
from arnas_common.dotted import get_dotted
from arnas_common.errors import CheckpointError
from arnas_common.errors import ConfigError
from arnas_common.io import check_name
from arnas_common.io import exclusive_lock
from arnas_common.io import inside
from arnas_ray.results import SweepResult
from arnas_ray.search import resolve_device
from arnas_ray.search.config import Eps
from arnas_ray.search.data import load_dataset
from arnas_ray.search.data import make_loader
from search_spaces import genotypes

__all__ = ["ScoreConfig", "score_checkpoint"]

DESCRIPTION = """\
Score a network trained by analysis.train on its dataset's test split: clean, FGSM,
PGD-20, PGD-100 (step 2/255) and AutoAttack accuracy, every attack on the same
examples, at the network's training eps unless --eps says otherwise (the paper:
8/255 on CIFAR-10). Writes a RobustBench-style JSON next to the checkpoint (or to
--out); --sweep scores every network of RUN_DIR/final into RUN_DIR/scores."""


#: The attacks' names as a type (``Literal[*ATTACKS]``, built at run time).
AttackName = Literal[ATTACKS]  # type: ignore[valid-type]


class ScoreConfig(FrozenConfig):
    """How checkpoints are scored (the command-line options, validated before any work)."""

    n_examples: Annotated[int, Field(strict=True, ge=1)] = Field(1000, description="test examples")
    attacks: tuple[AttackName, ...] = Field(
        ATTACKS, min_length=1, description="attacks, weakest first"
    )
    autoattack_version: Literal["standard", "plus", "rand"] = Field(
        "standard", description="AutoAttack version"
    )
    autoattack_budget: dict[str, int] = Field(
        default_factory=dict, description="e.g. apgd.n_iter: 10"
    )
    eps: Eps | None = Field(None, description="L-inf budget (None: the network's training eps)")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    seed: Annotated[int, Field(strict=True, ge=0)] = Field(
        0, description="seed of the attacks' random starts"
    )
    data_root: str | None = Field(None, description="dataset folder (None: the training run's)")


def _budget(items: list[str]) -> dict[str, Any]:
    budget = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value.strip().isdigit():
            raise ConfigError(f"--autoattack-budget takes ATTR=INTEGER items, got '{item}'")
        budget[key] = int(value)
    return budget


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m analysis.score", description=DESCRIPTION)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--checkpoint", type=Path, help="best.pt or last.pt of analysis.train")
    target.add_argument(
        "--sweep",
        type=Path,
        help="sweep run directory: score RUN_DIR/final/*/best.pt "
        "into RUN_DIR/scores/ (shown by analysis.report)",
    )
    default = {
        k: f.get_default(call_default_factory=True) for k, f in ScoreConfig.model_fields.items()
    }
    parser.add_argument(
        "--n-examples",
        type=int,
        default=default["n_examples"],
        help=f"test examples, at least 1 (default: {default['n_examples']}; AutoAttack is "
        "costly on CPU)",
    )
    parser.add_argument(
        "--attacks",
        nargs="+",
        default=list(ATTACKS),
        choices=ATTACKS,
        metavar="ATTACK",
        help=f"subset of: {' '.join(ATTACKS)} (default: all)",
    )
    parser.add_argument(
        "--autoattack-version",
        default=default["autoattack_version"],
        choices=("standard", "plus", "rand"),
        help=f"AutoAttack version (default: {default['autoattack_version']})",
    )
    parser.add_argument(
        "--autoattack-budget",
        nargs="*",
        default=[],
        metavar="ATTR=N",
        help="cheaper AutoAttack, e.g. apgd.n_iter=10 square.n_queries=100",
    )
    parser.add_argument(
        "--eps",
        type=float,
        default=None,
        help="L-inf budget of every attack, in [0, 0.25] (default: the network's training "
        "eps, e.g. 8/255 = 0.0314 for the paper's CIFAR-10 setting)",
    )
    parser.add_argument(
        "--device",
        default=default["device"],
        help=f"auto | cpu | cuda | cuda:N (default: {default['device']})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=default["seed"],
        help=f"seed of the attacks' random starts (default: {default['seed']})",
    )
    parser.add_argument(
        "--data-root", default=None, help="dataset folder (default: the training run's)"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON path (default: CHECKPOINT's folder/scores.json)"
    )
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    config = ScoreConfig.from_dict(
        {
            "n_examples": args.n_examples,
            "attacks": tuple(args.attacks),
            "autoattack_version": args.autoattack_version,
            "autoattack_budget": _budget(args.autoattack_budget),
            "eps": args.eps,
            "device": args.device,
            "seed": args.seed,
            "data_root": None if args.data_root is None else str(resolve_path(args.data_root)),
        },
        where="analysis.score",
    )
    if args.sweep is not None:
        SweepResult.read(args.sweep)  # a sweep's run directory, or one clear error
        checkpoints = sorted((args.sweep / "final").glob("*/best.pt"))
        if not checkpoints:
            raise CheckpointError(
                f"no trained networks under '{args.sweep / 'final'}'; "
                "run python -m analysis.train --sweep RUN_DIR first"
            )
        scores = args.sweep / "scores"
        jobs = []
        for checkpoint in checkpoints:
            name = check_name(checkpoint.parent.name, "network folder", str(args.sweep / "final"))
            jobs.append((checkpoint, inside(scores / f"{name}.json", scores, "score record")))
        lock: contextlib.AbstractContextManager[object] = exclusive_lock(
            scores, "analysis.score --sweep"
        )
    else:
        out = args.out or args.checkpoint.parent / "scores.json"
        if out.exists() and not out.is_file():
            raise ConfigError(f"--out '{out}' is a directory; give the JSON file's path")
        check_out_dir(out.parent)  # before the attacks, not after them
        jobs = [(args.checkpoint, out)]
        lock = contextlib.nullcontext()
    for checkpoint, _ in jobs:  # every file checked before the first (slow) attack
        read_checkpoint(checkpoint)
    set_threads(args.threads)
    with lock:
        for checkpoint, out in jobs:
            score_checkpoint(config, checkpoint, out)
    return 0


def score_checkpoint(config: ScoreConfig, checkpoint: Path, out: Path) -> dict[str, Any]:
    """Score one checkpoint, print its table, write its JSON record to ``out``; return it."""
    device = resolve_device(config.device)
    model, meta = load_network(checkpoint, device)
    trained = meta["config"]
    test = load_dataset(
        meta["dataset"],
        config.data_root or trained["data_root"],
        "test",
        trained.get("image_size"),
    )
    n = min(config.n_examples, len(test))  # type: ignore[arg-type]  # every dataset here is sized
    loader = make_loader(test, 256, device, order=range(n))
    # Checkpoints before the nested attack config hold attack_eps.
    trained_eps = get_dotted(trained, "attack.eps", trained.get("attack_eps"))
    eps = config.eps if config.eps is not None else float(trained_eps)
    scores = evaluate(
        model,
        loader,
        config.attacks,
        eps=eps,
        n_examples=config.n_examples,
        autoattack_version=config.autoattack_version,
        autoattack_budget=config.autoattack_budget or None,
        seed=config.seed,
        progress=True,
    )
    name = meta.get("name", checkpoint.parent.name)
    print(
        f"{name} on {meta['dataset']} test ({int(scores['n_examples'].iloc[0])} examples, Linf "
        f"eps {eps:.5f}):"
    )
    for row in scores.itertuples():
        print(f"  {row.attack:<11} {row.metric:<15} {row.accuracy:7.2%}")
    record = robustbench_record(
        scores,
        model_name=name,
        dataset=meta["dataset"],
        autoattack_version=config.autoattack_version,
        card=_model_card(meta, config),
    )
    record["params"] = meta.get("params")
    checks = record["autoattack_checks"]
    flagged = [flag for flag, raised in checks.items() if raised is True]
    if flagged:
        print(f"  AutoAttack's sanity checks flagged: {', '.join(flagged)} (see the score JSON)")
    print(f"wrote {write_record(record, out)}")
    return record


def _model_card(meta: dict[str, Any], config: ScoreConfig) -> dict[str, str]:
    """What a RobustBench model card can say about this network: its architecture and, for
    the published genotypes, where they come from; the footnote states a reduced budget."""
    spec = checkpoint_spec(meta)
    params = meta.get("params")
    architecture = f"ARNAS cell network ({spec.layers} cells, {spec.init_channels} channels"
    architecture += f", {params / 1e6:.2f}M parameters)" if isinstance(params, int) else ")"
    notes = []
    base = str(meta.get("name", "")).split("_seed")[0]
    if base in genotypes.names():
        notes.append(f"Cells: {genotypes.citation(base)}")
    if config.autoattack_budget:
        budget = ", ".join(f"{k}={v}" for k, v in sorted(config.autoattack_budget.items()))
        notes.append(
            f"AutoAttack with a reduced budget ({budget}): an upper bound of the standard one"
        )
    return {"architecture": architecture, "footnote": "; ".join(notes)}


if __name__ == "__main__":
    run_cli(main)
