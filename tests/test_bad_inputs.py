"""Bad input to any of the five commands: one ``error:`` line, exit 2, no traceback,
nothing written, and all of it before data or models are built.

The commands run as subprocesses (two at a time) from one working directory
holding the files the cases need; the directory's files are compared before and
after every case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from analysis.trainer import TrainConfig
from analysis.trainer import Trainer
from search_spaces import genotypes
from tests.helpers import TINY_TRAIN
from tests.helpers import write_sweep_run

SEARCH = ["-m", "arnas_ray.search"]
SWEEP = ["-m", "arnas_ray.sweep", "--quiet"]
TRAIN = ["-m", "analysis.train"]
SCORE = ["-m", "analysis.score"]
REPORT = ["-m", "analysis.report"]
TINY = ["--set", "dataset=digits"]

#: (case id, argv, a fragment the one error line must contain)
CASES = [
    # python -m arnas_ray.search
    ("search-missing-config", [*SEARCH, "--config", "nope.yaml"], "does not exist"),
    ("search-duplicate-key", [*SEARCH, "--config", "duplicate.yaml"], "duplicate key 'epochs'"),
    ("search-not-a-mapping", [*SEARCH, "--config", "list.yaml"], "expected a mapping"),
    ("search-bad-yaml", [*SEARCH, "--config", "broken.yaml"], "not valid YAML"),
    ("search-unknown-key", [*SEARCH, *TINY, "--set", "epohcs=2"], "did you mean 'epochs'"),
    ("search-zero-epochs", [*SEARCH, *TINY, "--set", "epochs=0"], "'epochs'"),
    ("search-string-epochs", [*SEARCH, *TINY, "--set", "epochs=abc"], "valid integer"),
    ("search-inf-lr", [*SEARCH, *TINY, "--set", "lr=.inf"], "'lr'"),
    ("search-nan-lr", [*SEARCH, *TINY, "--set", "lr=.nan"], "'lr'"),
    ("search-pixel-eps", [*SEARCH, *TINY, "--set", "train_attack.eps=8"], "did you mean 8/255"),
    (
        "search-negative-eps",
        [*SEARCH, *TINY, "--set", "search_attack.eps=-0.1"],
        "search_attack.eps",
    ),
    (
        "search-giant-batch",
        [*SEARCH, *TINY, "--set", "batch_size=100000"],
        "batch_size (100000) is larger",
    ),
    ("search-bad-device", [*SEARCH, *TINY, "--set", "device=tpu"], "device must be"),
    (
        "search-image-size-cifar",
        [*SEARCH, "--set", "image_size=8"],
        "applies to datasets digits, fashion_mnist, mnist only",
    ),
    ("search-out-is-a-file", [*SEARCH, *TINY, "--out", "a_file"], "is a file"),
    ("search-zero-threads", [*SEARCH, *TINY, "--threads", "0"], "--threads must be at least 1"),
    ("search-threads-not-int", [*SEARCH, "--threads", "x"], "invalid int value"),
    ("search-resume-no-out", [*SEARCH, *TINY, "--resume"], "--resume needs --out"),
    (
        "search-resume-truncated",
        [*SEARCH, *TINY, "--resume", "--out", "search_truncated"],
        "may be truncated",
    ),
    ("search-resume-missing", [*SEARCH, *TINY, "--resume", "--out", "empty_dir"], "no checkpoint"),
    ("search-unknown-flag", [*SEARCH, "--epochs", "3"], "unrecognized arguments"),
    # ... round two: hostile files, runaway values, options of another mode
    (
        "search-alias-bomb",
        [*SEARCH, "--config", "bomb.yaml"],
        "expands to more than 100,000 values",
    ),
    ("search-deep-nesting", [*SEARCH, "--config", "deep.yaml"], "nests deeper than"),
    ("search-not-utf8", [*SEARCH, "--config", "latin1.yaml"], "is not UTF-8 text"),
    ("search-config-link-loop", [*SEARCH, "--config", "loop1.yaml"], "symbolic link that loops"),
    ("search-out-link-loop", [*SEARCH, *TINY, "--out", "loop1.yaml/run"], "cannot be resolved"),
    ("search-config-is-a-dir", [*SEARCH, "--config", "empty_dir"], "is a directory"),
    ("search-huge-seed", [*SEARCH, *TINY, "--set", "seed=99999999999"], "'seed'"),
    ("search-huge-layers", [*SEARCH, *TINY, "--set", "layers=1000000"], "'layers'"),
    ("search-bool-epochs", [*SEARCH, *TINY, "--set", "epochs=true"], "'epochs'"),
    (
        "search-natural-weight-in-mgda",
        [*SEARCH, *TINY, "--set", "natural_weight=0.5"],
        "applies to arch_mode weighted only",
    ),
    (
        "search-normalization-in-weighted",
        [*SEARCH, *TINY, "--set", "arch_mode=weighted", "--set", "mgda_normalization=l2"],
        "applies to arch_mode mgda only",
    ),
    ("search-long-value-quoted-short", [*SEARCH, *TINY, "--set", "epochs=x" + "9" * 5000], "..."),
    # python -m arnas_ray.sweep
    ("sweep-unknown-key", [*SWEEP, "--set", "trails=3"], "did you mean 'trials'"),
    ("sweep-zero-trials", [*SWEEP, "--set", "trials=0"], "'trials'"),
    (
        "sweep-bad-objective",
        [*SWEEP, "--set", "objectives.accuracy=maximize"],
        "unknown objective",
    ),
    ("sweep-bad-direction", [*SWEEP, "--set", "objectives.clean_acc=up"], "objectives.clean_acc"),
    ("sweep-bad-sampler", [*SWEEP, "--set", "sampler=nsga"], "unknown sampler"),
    ("sweep-bad-callback", [*SWEEP, "--set", "callbacks=[mlflw]"], "did you mean 'mlflow'"),
    (
        "sweep-callback-secret",
        [*SWEEP, "--set", "callbacks=[wandb]", "--set", "callback_options.wandb.api_key=k"],
        "credentials never go into a sweep file",
    ),
    ("sweep-bad-storage", [*SWEEP, "--set", "storage=not a url"], "SQLAlchemy URL"),
    (
        "sweep-relative-trial-storage",
        [*SWEEP, "--set", "trial_storage=runs/trials"],
        "neither an absolute path nor a URI",
    ),
    (
        "sweep-trial-storage-secret",
        [*SWEEP, "--set", "trial_storage=s3://bucket/x?secret_key=abc"],
        "secret_key would put a secret",
    ),
    ("sweep-fixed-zero-epochs", [*SWEEP, "--set", "fixed.epochs=0"], "'epochs'"),
    (
        "sweep-fixed-giant-batch",
        [*SWEEP, "--set", "fixed.batch_size=100000"],
        "is larger than the train split",
    ),
    ("sweep-fixed-inf-lr", [*SWEEP, "--set", "fixed.lr=.inf"], "'lr'"),
    ("sweep-too-many-cpus", [*SWEEP, "--set", "resources.cpu=512"], "fit no node"),
    ("sweep-bad-scheduler", [*SWEEP, "--set", "scheduler.type=hyperband"], "scheduler.type"),
    ("sweep-low-above-high", [*SWEEP, "--set", "search_space.arch_lr.low=1.0"], "must be below"),
    (
        "sweep-duplicate-key",
        [*SWEEP, "--config", "duplicate_sweep.yaml"],
        "duplicate key 'trials'",
    ),
    ("sweep-out-is-a-file", [*SWEEP, "--out", "a_file"], "is a file"),
    ("sweep-resume-nothing", [*SWEEP, "--out", "empty_dir", "--resume"], "no sweep to continue"),
    ("sweep-alias-bomb", [*SWEEP, "--config", "bomb.yaml"], "expands to more than 100,000 values"),
    ("sweep-not-utf8", [*SWEEP, "--config", "latin1.yaml"], "is not UTF-8 text"),
    (
        "sweep-unreachable-address",
        [*SWEEP, "--address", "127.0.0.1:1"],
        "nothing answers at --address",
    ),
    (
        "sweep-bad-address",
        [*SWEEP, "--address", "localhost"],
        "--address must be auto or HOST:PORT",
    ),
    ("sweep-bool-bound", [*SWEEP, "--set", "search_space.arch_lr.low=true"], "valid number"),
    ("sweep-fractional-int", [*SWEEP, "--config", "int_fraction.yaml"], "whole 'low' and 'high'"),
    ("sweep-when-cycle", [*SWEEP, "--config", "when_cycle.yaml"], "form a cycle"),
    ("sweep-when-never", [*SWEEP, "--config", "when_never.yaml"], "'when' needs 'arch_mode'"),
    (
        "sweep-choice-with-bounds",
        [*SWEEP, "--set", "search_space.robust_width.low=0.1"],
        "not 'low'",
    ),
    ("sweep-huge-trials", [*SWEEP, "--set", "trials=99999999999"], "'trials'"),
    ("sweep-huge-fixed-epochs", [*SWEEP, "--set", "fixed.epochs=99999999999"], "'epochs'"),
    (
        "sweep-brackets-without-moasha",
        [*SWEEP, "--set", "scheduler.brackets=3"],
        "applies to type moasha only",
    ),
    (
        "sweep-metric-without-asha",
        [*SWEEP, "--set", "scheduler.metric=clean_acc"],
        "applies to type asha",
    ),
    ("sweep-quiet-and-verbose", [*SWEEP, "--verbose"], "not allowed with argument --quiet"),
    # python -m analysis.train
    ("train-neither", [*TRAIN], "give exactly one of --genotype"),
    ("train-unknown-genotype", [*TRAIN, "--genotype", "NOPE"], "NOPE"),
    (
        "train-bad-genotype-file",
        [*TRAIN, "--genotype", "broken_genotype.json"],
        "broken_genotype.json",
    ),
    ("train-zero-epochs", [*TRAIN, "--genotype", "ARNAS", "--set", "epochs=0"], "'epochs'"),
    ("train-nan-eps", [*TRAIN, "--genotype", "ARNAS", "--set", "attack.eps=.nan"], "attack.eps"),
    ("train-inf-lr", [*TRAIN, "--genotype", "ARNAS", "--set", "lr=.inf"], "'lr'"),
    (
        "train-giant-batch",
        [*TRAIN, "--genotype", "ARNAS", *TINY, "--set", "batch_size=100000"],
        "is larger",
    ),
    ("train-missing-sweep", [*TRAIN, "--sweep", "no_such_run"], "has no result.json"),
    (
        "train-sweep-negative-random",
        [*TRAIN, "--sweep", "run", "--random", "-1"],
        "--random and --also",
    ),
    ("train-sweep-zero-cpus", [*TRAIN, "--sweep", "run", "--cpus", "0"], "--cpus must be above 0"),
    ("train-out-is-a-file", [*TRAIN, "--genotype", "ARNAS", "--out", "a_file"], "is a file"),
    (
        "train-resume-truncated",
        [*TRAIN, "--genotype", "ARNAS", "--resume", "--out", "train_truncated"],
        "may be truncated",
    ),
    (
        "train-resume-missing-keys",
        [*TRAIN, "--genotype", "ARNAS", "--resume", "--out", "train_incomplete"],
        "lacks",
    ),
    (
        "train-trades-beta-in-pgd-at",
        [*TRAIN, "--genotype", "ARNAS", "--set", "trades_beta=3"],
        "applies to method trades only",
    ),
    (
        "train-not-utf8",
        [*TRAIN, "--genotype", "ARNAS", "--config", "latin1.yaml"],
        "is not UTF-8 text",
    ),
    (
        "train-sweep-too-many-cpus",
        [*TRAIN, "--sweep", "run", "--cpus", "64"],
        "fit no node of this machine",
    ),
    (
        "train-sweep-too-many-gpus",
        [*TRAIN, "--sweep", "run", "--gpus", "1"],
        "fit no node of this machine",
    ),
    ("train-sweep-hostile-trial-id", [*TRAIN, "--sweep", "hostile_run"], "is not a safe name"),
    (
        "train-sweep-zero-seeds",
        [*TRAIN, "--sweep", "run", "--seeds", "0"],
        "--seeds and --published-seeds",
    ),
    # python -m analysis.score
    ("score-missing-checkpoint", [*SCORE, "--checkpoint", "nope.pt"], "no checkpoint"),
    (
        "score-truncated-checkpoint",
        [*SCORE, "--checkpoint", "train_truncated/last.pt"],
        "may be truncated",
    ),
    (
        "score-foreign-checkpoint",
        [*SCORE, "--checkpoint", "foreign.pt"],
        "not a network checkpoint",
    ),
    ("score-incomplete-checkpoint", [*SCORE, "--checkpoint", "train_incomplete/last.pt"], "lacks"),
    (
        "score-nan-eps",
        [*SCORE, "--checkpoint", "nope.pt", "--eps", "nan"],
        "'eps' Input should be a finite number",
    ),
    ("score-pixel-eps", [*SCORE, "--checkpoint", "nope.pt", "--eps", "5"], "did you mean 5/255"),
    (
        "score-zero-examples",
        [*SCORE, "--checkpoint", "nope.pt", "--n-examples", "0"],
        "n_examples",
    ),
    (
        "score-bad-budget",
        [*SCORE, "--checkpoint", "nope.pt", "--autoattack-budget", "apgd"],
        "ATTR=INTEGER",
    ),
    ("score-bad-attack", [*SCORE, "--checkpoint", "nope.pt", "--attacks", "cw"], "invalid choice"),
    ("score-sweep-untrained", [*SCORE, "--sweep", "run"], "no trained networks"),
    ("score-no-target", [*SCORE], "one of the arguments --checkpoint --sweep is required"),
    (
        "score-out-under-a-file",
        [*SCORE, "--checkpoint", "trained/best.pt", "--out", "a_file/s.json"],
        "is a file",
    ),
    (
        "score-out-is-a-dir",
        [*SCORE, "--checkpoint", "trained/best.pt", "--out", "empty_dir"],
        "is a directory",
    ),
    ("score-sweep-hostile-trial-id", [*SCORE, "--sweep", "hostile_run"], "is not a safe name"),
    ("score-sweep-unsafe-folder", [*SCORE, "--sweep", "unsafe_final_run"], "is not a safe name"),
    # python -m analysis.report
    ("report-missing-run", [*REPORT, "no_such_run"], "has no result.json"),
    ("report-truncated-parquet", [*REPORT, "legacy_truncated"], "cannot be read"),
    ("report-truncated-result", [*REPORT, "truncated_result"], "not valid JSON"),
    ("report-all-nan", [*REPORT, "all_nan"], "no trial"),
    ("report-no-argument", [*REPORT], "the following arguments are required"),
    ("report-hostile-trial-id", [*REPORT, "hostile_run"], "is not a safe name"),
    ("report-result-not-utf8", [*REPORT, "latin1_run"], "is not UTF-8 text"),
    ("report-result-too-deep", [*REPORT, "deep_run"], "nests deeper than Python can read"),
]


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``root`` with its size and time (links as links: a loop is an entry)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, bool]]:
    root = tmp_path_factory.mktemp("bad-inputs")
    work = root / "template"
    work.mkdir()
    (work / "duplicate.yaml").write_text("dataset: digits\nepochs: 2\nepochs: 3\n")
    (work / "duplicate_sweep.yaml").write_text("trials: 2\ntrials: 3\n")
    (work / "list.yaml").write_text("- epochs\n")
    (work / "broken.yaml").write_text("epochs: [1, 2\n")
    (work / "a_file").write_text("not a directory\n")
    (work / "empty_dir").mkdir()
    (work / "broken_genotype.json").write_text('{"schema": 1, "accurate": ')
    for name in ("search_truncated/checkpoint.pt", "train_truncated/last.pt"):
        (work / name).parent.mkdir()
        (work / name).write_bytes(b"PK\x03\x04 truncated zip")
    (work / "train_incomplete").mkdir()
    torch.save({"kind": "arnas-ray-network", "epoch": 1}, work / "train_incomplete" / "last.pt")
    torch.save({"weights": torch.zeros(2)}, work / "foreign.pt")
    objectives = {"clean_acc": "maximize", "pgd_acc": "maximize"}
    write_sweep_run(
        work / "run", objectives, [{"trial_id": "a", "clean_acc": 0.9, "pgd_acc": 0.5}]
    )
    write_sweep_run(
        work / "all_nan",
        objectives,
        [{"trial_id": "a", "clean_acc": float("nan"), "pgd_acc": float("nan")}],
    )
    (work / "legacy_truncated").mkdir()
    (work / "legacy_truncated" / "trials.parquet").write_bytes(b"PAR1 truncated")
    (work / "truncated_result").mkdir()
    (work / "truncated_result" / "result.json").write_text('{"schema": 2, "name": ')
    # round two: hostile and runaway files
    lol = '["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    levels = [f"{k}: &{k} [" + ",".join([f"*{p}"] * 9) + "]" for p, k in zip("abcdefg", "bcdefgh")]
    bomb = "\n".join([f"a: &a {lol}", *levels, "epohcs: [" + ",".join(["*h"] * 9) + "]"]) + "\n"
    (work / "bomb.yaml").write_text(bomb)
    (work / "deep.yaml").write_text("epochs: " + "[" * 3000 + "]" * 3000 + "\n")
    (work / "latin1.yaml").write_bytes("epochs: 3  # caf\xe9\n".encode("latin-1"))
    os.symlink("loop2.yaml", work / "loop1.yaml")
    os.symlink("loop1.yaml", work / "loop2.yaml")
    (work / "int_fraction.yaml").write_text(
        "search_space:\n  layers: {type: int, low: 3.5, high: 6}\n"
    )
    (work / "when_cycle.yaml").write_text(
        "search_space:\n"
        "  arch_mode: {type: choice, values: [mgda, weighted], when: {robust_width: 1.0}}\n"
        "  robust_width: {type: choice, values: [1.0, 2.0], when: {arch_mode: mgda}}\n"
    )
    (work / "when_never.yaml").write_text(
        "search_space:\n"
        "  natural_weight: {type: uniform, low: 0.1, high: 1.0, when: {arch_mode: weighted}}\n"
        "  arch_mode: {type: choice, values: [mgda]}\n"
    )
    one = [{"trial_id": "a", "clean_acc": 0.9, "pgd_acc": 0.5}]
    write_sweep_run(
        work / "hostile_run", objectives, [{**one[0], "trial_id": "/../../../ESCAPED"}]
    )
    write_sweep_run(work / "unsafe_final_run", objectives, one)
    (work / "unsafe_final_run" / "final" / "bad name").mkdir(parents=True)
    (work / "unsafe_final_run" / "final" / "bad name" / "best.pt").write_bytes(b"not read")
    write_sweep_run(work / "hostile_manifest_run", objectives, one)
    (work / "hostile_manifest_run" / "final").mkdir()
    (work / "hostile_manifest_run" / "final" / "jobs.json").write_text(
        '{"schema": 1, "jobs": [{"name": "../../ESCAPED"}]}'
    )
    (work / "hostile_manifest_run" / "scores").mkdir()
    (work / "hostile_manifest_run" / "scores" / "x.json").write_text(
        '{"name": "x", "clean_acc": 0.5}'
    )
    (work / "latin1_run").mkdir()
    (work / "latin1_run" / "result.json").write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    (work / "deep_run").mkdir()
    (work / "deep_run" / "result.json").write_text("[" * 100000 + "]" * 100000)
    Trainer(TrainConfig(**{**TINY_TRAIN, "epochs": 1}), genotypes.get("ARNAS"), "arnas").run(
        work / "trained", progress=False
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}

    def run(case):
        name, argv, _ = case
        cwd = root / name  # a copy per case: cases run two at a time
        shutil.copytree(work, cwd, symlinks=True)
        before = _files(cwd)
        done = subprocess.run(
            [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
        )
        return name, (done, _files(cwd) == before)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, CASES))


def test_there_are_at_least_forty_cases_over_five_commands() -> None:
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)
    assert {tuple(c[1][:2]) for c in CASES} == {
        tuple(SEARCH),
        tuple(SWEEP[:2]),
        tuple(TRAIN),
        tuple(SCORE),
        tuple(REPORT),
    }


@pytest.mark.parametrize(("name", "argv", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_writes_nothing(outcomes, name, argv, fragment) -> None:
    done, untouched = outcomes[name]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert untouched, "the command wrote or changed files"
