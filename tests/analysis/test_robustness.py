from __future__ import annotations

import pytest
import torch
from torch import nn

from analysis.robustbench import robustbench_record
from analysis.robustness import evaluate
from analysis.robustness import transfer_accuracy
from arnas_common import metrics as M
from arnas_ray.search.attacks import pgd
from arnas_ray.search.data import load_dataset
from search_spaces import ConfigError
from tests.helpers import train_digits_cnn

BUDGET = {
    "apgd.n_iter": 10,
    "apgd_targeted.n_iter": 10,
    "apgd_targeted.n_target_classes": 2,
    "fab.n_iter": 10,
    "fab.n_target_classes": 2,
    "square.n_queries": 100,
}


def _tiny_trained(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    test_x, test_y = load_dataset("digits", split="test", image_size=8).tensors
    return train_digits_cnn(seed, steps=100), test_x[:64], test_y[:64]


@pytest.fixture(scope="module")
def scored():
    model, x, y = _tiny_trained()
    scores = evaluate(model, (x, y), eps=8 / 255, autoattack_budget=BUDGET, seed=0, batch_size=64)
    return model, x, y, scores


def test_attack_ordering(scored) -> None:
    _, _, y, scores = scored
    acc = dict(zip(scores["attack"], scores["accuracy"]))
    slack = 2 / len(y)  # sampling noise on the same examples
    assert acc["clean"] > 0.7
    assert acc["clean"] >= acc["fgsm"] - slack
    assert acc["fgsm"] >= acc["pgd20"] - slack
    assert acc["pgd20"] >= acc["pgd100"] - slack
    assert acc["pgd100"] >= acc["autoattack"] - slack
    assert acc["clean"] > acc["autoattack"]  # the attacks really attack
    assert list(scores["metric"]) == [
        M.CLEAN_ACC,
        M.FGSM_ACC,
        M.PGD20_ACC,
        M.PGD100_ACC,
        M.AUTOATTACK_ACC,
    ]


def test_autoattack_equals_a_direct_package_call(scored) -> None:
    from pyautoattack import AutoAttack

    model, x, y, scores = scored
    adversary = AutoAttack(
        model, device="cpu", eps=8 / 255, norm="Linf", seed=0, version="standard"
    )
    for dotted, value in BUDGET.items():
        owner, attribute = dotted.split(".")
        setattr(getattr(adversary, owner), attribute, value)
    x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=64)
    with torch.no_grad():
        direct = float((model(x_adv).argmax(1) == y).float().mean())
    ours = float(scores.loc[scores["attack"] == "autoattack", "accuracy"].iloc[0])
    assert ours == pytest.approx(direct, abs=1e-12)


def test_robustbench_record_and_transfer(scored) -> None:
    model, x, y, scores = scored
    record = robustbench_record(scores, model_name="tiny", dataset="digits")
    assert record[M.CLEAN_ACC] == scores["accuracy"].iloc[0] and record["norm"] == "Linf"
    assert record["n_examples"] == 64 and "pyautoattack" in record["versions"]
    other, _, _ = _tiny_trained(seed=1)
    white_box = float(scores.loc[scores["attack"] == "pgd20", "accuracy"].iloc[0])
    transfer = transfer_accuracy(model, other, x, y, steps=20)
    x_adv = pgd(model, x, y, 8 / 255, 2 / 255, 20, generator=torch.Generator().manual_seed(0))
    with (
        torch.no_grad()
    ):  # the black-box examples, made by hand on the source, scored on the target
        assert transfer == pytest.approx(
            float((other(x_adv).argmax(1) == y).float().mean()), abs=1e-12
        )
    assert transfer_accuracy(model, model, x, y, steps=20) == pytest.approx(white_box)


def test_unknown_attack_is_rejected() -> None:
    model, x, y = _tiny_trained()
    with pytest.raises(ConfigError, match="did you mean 'pgd20'"):
        evaluate(model, (x, y), attacks=["pgd2O"])


def test_robustbench_card_and_autoattack_checks(scored) -> None:
    from analysis.robustbench import ROBUSTBENCH_FIELDS
    from analysis.robustbench import eps_text

    model, x, y, scores = scored
    record = robustbench_record(
        scores,
        model_name="cnn",
        dataset="digits",
        card={"architecture": "a CNN", "footnote": "tiny"},
    )
    card = record["robustbench"]
    assert list(card) == list(ROBUSTBENCH_FIELDS)
    assert card["eps"] == "8/255" and card["architecture"] == "a CNN" and card["link"] == ""
    assert (
        card["clean_acc"] == f"{100 * record[M.CLEAN_ACC]:.2f}"
        and card["number_forward_passes"] == 1
    )
    assert eps_text(0.1) == "0.1" and eps_text(4 / 255) == "4/255"
    # A well-behaved logit model raises none of AutoAttack's own checks...
    assert record["autoattack_checks"]["softmax_output"] is False
    assert not any(v is True for k, v in record["autoattack_checks"].items() if k != "messages")


def test_autoattack_checks_flag_a_model_that_outputs_probabilities() -> None:
    from analysis.robustness import autoattack

    model, x, y = _tiny_trained()
    probabilities = nn.Sequential(model, nn.Softmax(dim=1)).eval()
    checks: dict = {}
    autoattack(
        probabilities,
        x[:16],
        y[:16],
        eps=8 / 255,
        attacks=["apgd-ce"],
        budget={"apgd.n_iter": 2},
        checks=checks,
    )
    assert checks["softmax_output"] is True and checks["randomized"] is False
    assert any("probability distribution" in m for m in checks["messages"])


def test_evaluation_warnings_name_a_large_pgd_autoattack_gap() -> None:
    import pandas as pd

    from analysis.fidelity import PGD_AA_MARGIN
    from analysis.fidelity import evaluation_warnings

    networks = pd.DataFrame(
        [
            {"name": "masked", M.PGD20_ACC: 0.70, M.AUTOATTACK_ACC: 0.50, "autoattack_flags": ""},
            {"name": "honest", M.PGD20_ACC: 0.55, M.AUTOATTACK_ACC: 0.50, "autoattack_flags": ""},
            {
                "name": "flagged",
                M.PGD20_ACC: 0.50,
                M.AUTOATTACK_ACC: 0.49,
                "autoattack_flags": "zero_gradients",
            },
        ]
    )
    lines = evaluation_warnings(networks)
    assert PGD_AA_MARGIN == 0.10 and len(lines) == 2
    assert lines[0].startswith("masked: PGD-20 70.0 % vs AutoAttack 50.0 % (gap 20.0 points > 10)")
    assert lines[1] == "flagged: AutoAttack's sanity checks flagged zero_gradients"
