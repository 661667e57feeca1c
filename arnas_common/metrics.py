"""Metric keys, defined once and used by the engine, Tune reports, the Optuna
study, ``trials.parquet``, ``pareto.json`` and every plot axis."""

from __future__ import annotations

__all__ = [
    "ADVERSARIAL_ARCH_LOSS",
    "ALPHAS",
    "ALPHA_ENTROPY",
    "ALPHA_MAX_WEIGHT",
    "ATTACK_METRICS",
    "AUTOATTACK_ACC",
    "CLEAN_ACC",
    "CLEAN_LOSS",
    "CONSTRAINT_METRICS",
    "DEFAULT_OBJECTIVES",
    "EPOCH",
    "EPOCH_TIME_S",
    "FGSM_ACC",
    "GENOTYPE",
    "HISTORY_KEYS",
    "LR",
    "MGDA_GAMMA_MAX",
    "MGDA_GAMMA_MEAN",
    "MGDA_GAMMA_MIN",
    "NETWORK",
    "NATURAL_ARCH_LOSS",
    "OBJECTIVE_METRICS",
    "PARAMS_M",
    "PGD100_ACC",
    "PGD20_ACC",
    "PGD_ACC",
    "PGD_LOSS",
    "TRAIN_ACC",
    "TRAIN_EPS",
    "TRAIN_LOSS",
    "TRIAL_METRICS",
    "VAL_EPS",
    "VAL_EXAMPLES",
    "VAL_PGD_STEPS",
    "WARMUP",
]

EPOCH = "epoch"
TRAIN_LOSS = "train_loss"  # adversarial training loss of the weight steps
TRAIN_ACC = "train_acc"  # accuracy on the PGD training examples
CLEAN_ACC = "clean_acc"  # supernet accuracy on clean validation images
CLEAN_LOSS = "clean_loss"
PGD_ACC = "pgd_acc"  # supernet accuracy under PGD on validation images
PGD_LOSS = "pgd_loss"
NATURAL_ARCH_LOSS = "natural_arch_loss"
ADVERSARIAL_ARCH_LOSS = "adversarial_arch_loss"
MGDA_GAMMA_MEAN = "mgda_gamma_mean"  # weight of the natural objective in the arch step
MGDA_GAMMA_MIN = "mgda_gamma_min"
MGDA_GAMMA_MAX = "mgda_gamma_max"
ALPHA_ENTROPY = "alpha_entropy"  # mean entropy of softmax(alpha) per edge, in nats
ALPHA_MAX_WEIGHT = "alpha_max_weight"  # mean over edges of the largest softmax(alpha) weight
PARAMS_M = "params_m"  # parameters (millions) of the derived network
GENOTYPE = "genotype"  # JSON of the derived genotype
NETWORK = "network"  # JSON: the derived network's NetworkSpec, at the size params_m counts
ALPHAS = "alphas"  # JSON: cell type in use -> softmax(alpha), one row of op weights per edge
EPOCH_TIME_S = "epoch_time_s"
WARMUP = "warmup"  # True for a weights-only epoch (warmup_epochs)
TRAIN_EPS = "train_eps"  # PGD eps of weight training at the end of the epoch (eps warm-up)
VAL_EPS = "val_eps"  # PGD eps of pgd_acc
VAL_PGD_STEPS = "val_pgd_steps"  # PGD steps of pgd_acc
VAL_EXAMPLES = "val_examples"  # validation images behind clean_acc and pgd_acc
LR = "lr"

#: Final metrics of a sweep trial kept in its record (``arnas_ray.results``).
TRIAL_METRICS = (
    CLEAN_ACC,
    PGD_ACC,
    VAL_EPS,
    VAL_PGD_STEPS,
    VAL_EXAMPLES,
    PARAMS_M,
    TRAIN_LOSS,
    MGDA_GAMMA_MEAN,
    ALPHA_ENTROPY,
    ALPHA_MAX_WEIGHT,
)
#: Per-epoch metrics kept in a sweep trial's history (learning curves, hypervolume over epochs).
HISTORY_KEYS = (
    EPOCH,
    CLEAN_ACC,
    PGD_ACC,
    PARAMS_M,
    TRAIN_LOSS,
    MGDA_GAMMA_MEAN,
    ALPHA_ENTROPY,
    ALPHA_MAX_WEIGHT,
    TRAIN_EPS,
    EPOCH_TIME_S,
)

#: The objectives of a sweep that names none (and of run directories older than sweep.yaml).
DEFAULT_OBJECTIVES: dict[str, str] = {CLEAN_ACC: "maximize", PGD_ACC: "maximize"}

#: Metrics a sweep may constrain (``constraints:``): what every trial reports at its end.
CONSTRAINT_METRICS = (CLEAN_ACC, PGD_ACC, PARAMS_M, TRAIN_LOSS, ALPHA_ENTROPY, ALPHA_MAX_WEIGHT)

#: Metrics a sweep may optimise, with their natural direction.
OBJECTIVE_METRICS: dict[str, str] = {
    CLEAN_ACC: "maximize",
    PGD_ACC: "maximize",
    PARAMS_M: "minimize",
}

# Robustness scores of trained networks (analysis.robustness), RobustBench-style names.
FGSM_ACC = "fgsm_acc"
PGD20_ACC = "pgd20_acc"
PGD100_ACC = "pgd100_acc"
AUTOATTACK_ACC = "autoattack_acc"

#: Attack name -> metric key, in the order of increasing strength.
ATTACK_METRICS: dict[str, str] = {
    "clean": CLEAN_ACC,
    "fgsm": FGSM_ACC,
    "pgd20": PGD20_ACC,
    "pgd100": PGD100_ACC,
    "autoattack": AUTOATTACK_ACC,
}
