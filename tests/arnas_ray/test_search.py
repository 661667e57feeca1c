from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest
import torch

from arnas_common import metrics as M
from arnas_ray.search import ArnasSearch
from arnas_ray.search import SearchConfig
from arnas_ray.search import split_run_config
from search_spaces import CheckpointError
from search_spaces import ConfigError
from search_spaces import Genotype

TINY = dict(
    dataset="digits",
    image_size=8,
    data_limit=120,
    epochs=2,
    batch_size=8,
    steps_per_epoch=2,
    val_limit=16,
    train_attack={"steps": 2},
    search_attack={"steps": 2},
    val_attack_steps=2,
    seed=3,
)
TINY_SPACE = {"layers": 4, "init_channels": 2, "nodes": 2}


def _metrics_without_time(history):
    return [{k: v for k, v in row.items() if k != M.EPOCH_TIME_S} for row in history]


def test_paper_defaults() -> None:
    c = SearchConfig()
    assert (c.epochs, c.batch_size, c.lr, c.lr_min, c.momentum, c.weight_decay) == (
        50,
        32,
        0.025,
        0.001,
        0.9,
        3e-4,
    )
    assert (c.arch_lr, c.arch_betas, c.arch_weight_decay) == (3e-4, (0.5, 0.999), 1e-3)
    for attack in (c.train_attack, c.search_attack):
        assert (attack.eps, attack.step_size, attack.steps, attack.random_start) == (
            8 / 255,
            2 / 255,
            7,
            True,
        )
    assert (c.regularization_coefficient, c.arch_mode, c.arch_order) == (0.1, "mgda", "second")
    assert (c.grad_clip, c.train_portion, c.dataset) == (5.0, 0.5, "cifar10")
    assert SearchConfig.from_dict(c.to_dict()) == c


def test_epoch_metrics_and_genotype() -> None:
    search = ArnasSearch(SearchConfig(**TINY), TINY_SPACE)
    row = search.train_epoch()
    for key in (
        M.TRAIN_LOSS,
        M.CLEAN_ACC,
        M.PGD_ACC,
        M.MGDA_GAMMA_MEAN,
        M.MGDA_GAMMA_MIN,
        M.MGDA_GAMMA_MAX,
        M.ALPHA_ENTROPY,
        M.PARAMS_M,
        M.EPOCH_TIME_S,
        M.NATURAL_ARCH_LOSS,
        M.ADVERSARIAL_ARCH_LOSS,
    ):
        assert isinstance(row[key], float), key
    assert 0.0 <= row[M.MGDA_GAMMA_MIN] <= row[M.MGDA_GAMMA_MEAN] <= row[M.MGDA_GAMMA_MAX] <= 1.0
    assert 0.0 <= row[M.PGD_ACC] <= 1.0 and 0.0 <= row[M.CLEAN_ACC] <= 1.0
    assert Genotype.from_json(row[M.GENOTYPE]) == search.genotype()
    assert row[M.EPOCH] == 1 and search.epoch == 1


def test_resume_gives_the_same_run(tmp_path) -> None:
    straight = ArnasSearch(SearchConfig(**TINY), TINY_SPACE)
    straight.train_epoch()
    straight.train_epoch()

    first = ArnasSearch(SearchConfig(**TINY), TINY_SPACE)
    first.train_epoch()
    first.save_checkpoint(tmp_path / "ck.pt")
    torch.manual_seed(12345)  # a fresh process would have another RNG state
    resumed = ArnasSearch(SearchConfig(**TINY), TINY_SPACE)
    resumed.load_checkpoint(tmp_path / "ck.pt")
    resumed.train_epoch()

    assert resumed.genotype() == straight.genotype()
    assert _metrics_without_time(resumed.history) == _metrics_without_time(straight.history)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_checkpoint_of_another_config_is_refused(tmp_path) -> None:
    search = ArnasSearch(SearchConfig(**TINY), TINY_SPACE)
    search.save_checkpoint(tmp_path / "ck.pt")
    other = ArnasSearch(SearchConfig(**{**TINY, "arch_lr": 1e-3}), TINY_SPACE)
    with pytest.raises(CheckpointError, match="arch_lr"):
        other.load_checkpoint(tmp_path / "ck.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        other.load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"epoch": 3}, "unknown key 'epoch' \\(did you mean 'epochs'\\?\\)"),
        ({"layer": 3}, "did you mean 'layers'"),
        ({"epochs": "three"}, "'epochs' Input should be a valid integer"),
        ({"train_attack": {"eps": 8}}, "'train_attack.eps'"),
        ({"search_attack": {"eps": 0.5}}, "did you mean 0.5/255"),
        ({"train_attack.step_size": -1}, "'train_attack.step_size'"),
        ({"train_attack": {"epss": 0.1}}, "unknown key"),
        ({"arch_mode": "mdga"}, "'arch_mode'"),
        ({"robust_width": 0.0}, "'robust_width'"),
        ({"lr": 0.01, "lr_min": 0.1}, "lr_min"),
    ],
)
def test_bad_run_configs(flat, message) -> None:
    with pytest.raises(ConfigError, match=message):
        split_run_config(flat)


def test_dataset_keys_must_agree_with_dataset() -> None:
    config, space = split_run_config({"dataset": "digits", "num_classes": 100})
    with pytest.raises(ConfigError, match="contradicts dataset 'digits'"):
        ArnasSearch(config, space)


def test_cli_killed_mid_run_resumes_and_reports_errors_in_one_line(tmp_path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("\n".join(f"{k}: {v}" for k, v in {**TINY, **TINY_SPACE, "epochs": 3}.items()))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "arnas_ray.search",
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while (
        not (out / "checkpoint.pt").exists()
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    proc.kill()  # SIGKILL right after the first checkpoint: no clean-up runs
    proc.communicate()
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "genotype:" in again.stdout and (out / "genotype.json").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row[M.EPOCH] for row in rows] == [1, 2, 3]
    Genotype.load(out / "genotype.json")

    bad = subprocess.run(
        cmd[:-3] + ["--set", "epoch=2"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert "did you mean 'epochs'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    exists = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert exists.returncode == 2 and "already holds a run" in exists.stderr


def test_help_documents_every_key() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "arnas_ray.search", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    from search_spaces import SpaceConfig

    for key in list(SearchConfig.model_fields) + list(SpaceConfig.model_fields):
        assert key in out.stdout, key


def test_warmup_epochs_train_weights_only() -> None:
    search = ArnasSearch(SearchConfig(**{**TINY, "epochs": 3, "warmup_epochs": 1}), TINY_SPACE)
    alphas = {c: a.detach().clone() for c, a in search.model.arch_parameters().items()}
    weights = [w.detach().clone() for w in search.model.weights()]
    row = search.train_epoch()
    assert row[M.WARMUP] is True and row[M.MGDA_GAMMA_MEAN] is None
    assert M.NATURAL_ARCH_LOSS not in row
    assert all(torch.equal(a, alphas[c]) for c, a in search.model.arch_parameters().items())
    assert any(not torch.equal(w, v) for w, v in zip(search.model.weights(), weights))
    row = search.train_epoch()
    assert row[M.WARMUP] is False and isinstance(row[M.MGDA_GAMMA_MEAN], float)
    assert any(not torch.equal(a, alphas[c]) for c, a in search.model.arch_parameters().items())


def test_unvalidated_warmup_reports_no_scores_and_the_alphas_of_the_cells_in_use() -> None:
    config = SearchConfig(**{**TINY, "epochs": 2, "warmup_epochs": 1, "warmup_validation": False})
    search = ArnasSearch(config, TINY_SPACE)
    warm = search.train_epoch()
    assert warm[M.CLEAN_ACC] is None and warm[M.PGD_ACC] is None and M.VAL_EXAMPLES not in warm
    row = search.train_epoch()
    assert isinstance(row[M.CLEAN_ACC], float) and row[M.VAL_EXAMPLES] == 12
    alphas = json.loads(row[M.ALPHAS])
    assert set(alphas) == set(
        search.model.cell_types()
    )  # 4 cells: accurate, reduce, reduce, robust
    for cell, rows in alphas.items():
        expected = torch.softmax(search.model.arch_parameters()[cell].detach(), dim=-1)
        assert torch.allclose(torch.tensor(rows), expected, atol=1e-6)


def test_eps_warmup_ramps_linearly_per_step() -> None:
    config = SearchConfig(
        **{**TINY, "epochs": 3, "eps_warmup_epochs": 2, "train_attack": {"eps": 0.1}}
    )
    search = ArnasSearch(config, TINY_SPACE)
    steps = search.steps_per_epoch()  # 2
    assert [search.eps_scale(i) for i in range(steps)] == [0.25, 0.5]
    row = search.train_epoch()
    assert row[M.TRAIN_EPS] == pytest.approx(0.05)
    search.train_epoch()
    assert [search.eps_scale(i) for i in range(steps)] == [1.0, 1.0]
    assert search.train_epoch()[M.TRAIN_EPS] == pytest.approx(0.1)
    assert ArnasSearch(SearchConfig(**TINY), TINY_SPACE).eps_scale(0) == 1.0  # paper: no ramp


def test_warmup_must_leave_architecture_epochs() -> None:
    with pytest.raises(ConfigError, match="warmup_epochs"):
        SearchConfig.from_dict({"epochs": 3, "warmup_epochs": 3})


def test_validation_reports_what_pgd_acc_measured() -> None:
    search = ArnasSearch(SearchConfig(**TINY), TINY_SPACE)
    scores = search.evaluate()
    assert scores[M.VAL_EPS] == pytest.approx(8 / 255)  # search_attack.eps
    assert scores[M.VAL_PGD_STEPS] == TINY["val_attack_steps"]
    assert (
        scores[M.VAL_EXAMPLES] == len(search.splits.val) == 12
    )  # 10 % of 120 images, below val_limit


def test_alpha_statistics_of_uniform_and_decided_alphas() -> None:
    from arnas_ray.search.engine import alpha_statistics

    uniform = alpha_statistics({"accurate": torch.zeros(3, 7)}, {"accurate"})
    assert uniform[M.ALPHA_ENTROPY] == pytest.approx(float(torch.log(torch.tensor(7.0))))
    assert uniform[M.ALPHA_MAX_WEIGHT] == pytest.approx(1 / 7)
    decided = torch.zeros(2, 7)
    decided[:, 3] = float(torch.log(torch.tensor(6.0)))  # weight 6/12 = 0.5 on op 3
    stats = alpha_statistics({"accurate": decided, "robust": torch.zeros(2, 7)}, {"accurate"})
    assert stats[M.ALPHA_MAX_WEIGHT] == pytest.approx(0.5)  # unused cell types are left out


@pytest.mark.parametrize(
    ("mode", "natural_weight", "gamma"),
    [("weighted", 0.3, 0.3), ("natural", 1.0, 1.0), ("adversarial", 1.0, 0.0)],
)
def test_ablation_arch_modes_run_end_to_end(mode, natural_weight, gamma) -> None:
    config = SearchConfig(
        **{**TINY, "epochs": 1, "arch_mode": mode, "natural_weight": natural_weight}
    )
    search = ArnasSearch(config, TINY_SPACE)
    before = {k: v.detach().clone() for k, v in search.model.arch_parameters().items()}
    row = search.train_epoch()
    # The combiner's weight of the natural objective, every step: fixed by the mode.
    assert row[M.MGDA_GAMMA_MIN] == row[M.MGDA_GAMMA_MAX] == pytest.approx(gamma)
    assert any(not torch.equal(before[k], v) for k, v in search.model.arch_parameters().items())
    assert Genotype.from_json(row[M.GENOTYPE]) == search.genotype()


def test_every_arch_mode_has_exactly_one_combiner() -> None:
    from typing import get_args

    from arnas_ray.search.architect import COMBINERS
    from arnas_ray.search.config import ArchMode

    assert set(COMBINERS) == set(get_args(ArchMode))


def test_cli_removes_temporaries_a_killed_write_left(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    orphan = out / ".checkpoint.pt.k2j3h4.tmp"
    orphan.write_bytes(b"half a checkpoint")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arnas_ray.search",
            "--smoke-test",
            "--set",
            "dataset=digits",
            "--set",
            "image_size=8",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not orphan.exists() and (out / "checkpoint.pt").is_file()
    assert not list(out.glob(".*.tmp"))


def test_channels_last_fused_edges_compute_what_the_default_layout_does() -> None:
    """channels_last with fused edges crashed on CPU ('view size is not compatible') where a
    stage's 4-D weights or BatchNorm outputs are channels_last; now the layouts agree, and a
    whole search epoch runs."""
    import copy

    from search_spaces import SpaceConfig
    from search_spaces import Supernet

    torch.manual_seed(0)
    net = Supernet(SpaceConfig(layers=5, init_channels=8, nodes=2)).double()  # 16x16: conv path
    last = copy.deepcopy(net).to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    y = net(x)
    y_last = last(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(y, y_last, atol=1e-10)
    y.sum().backward()
    y_last.sum().backward()
    for p, q in zip(net.parameters(), last.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-9)
    base = dict(TINY, image_size=16, data_limit=200, batch_size=16, steps_per_epoch=1, epochs=1)
    row = ArnasSearch(
        SearchConfig(**base, channels_last=True), {"layers": 5, "init_channels": 8, "nodes": 2}
    ).train_epoch()
    assert math.isfinite(row[M.TRAIN_LOSS])
