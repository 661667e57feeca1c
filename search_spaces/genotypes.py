"""Registry of published genotypes.

Each entry cites its source. DARTS-family genotypes have a single normal cell;
it is used for both the accurate and the robust cells, so that every published
architecture builds in the ARNAS network skeleton.

>>> from search_spaces import genotypes
>>> "ARNAS" in genotypes.names()
True
>>> genotypes.get("ARNAS").robust[0]
('dil_conv_5x5', 0)
"""

from __future__ import annotations

from collections.abc import Callable

from arnas_common.errors import ArnasError
from arnas_common.errors import UnknownNameError
from arnas_common.errors import near_miss
from search_spaces.genotype import Genotype

__all__ = ["citation", "get", "names", "register_genotype"]

_REGISTRY: dict[str, tuple[Genotype, str]] = {}


def register_genotype(name: str, citation: str) -> Callable[[Callable[[], Genotype]], Genotype]:
    """Decorator: register the genotype a zero-argument function returns."""

    def decorate(build: Callable[[], Genotype]) -> Genotype:
        if name in _REGISTRY:
            raise ArnasError(f"genotype '{name}' is registered twice")
        genotype = build()
        _REGISTRY[name] = (genotype, citation)
        return genotype

    return decorate


def names() -> list[str]:
    """Names of all registered genotypes, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> Genotype:
    """The registered genotype ``name`` (case-insensitive)."""
    key = {n.lower(): n for n in _REGISTRY}.get(name.lower())
    if key is None:
        raise UnknownNameError(
            f"unknown genotype '{name}'{near_miss(name.upper(), _REGISTRY)}; "
            f"registered: {', '.join(names())}"
        )
    return _REGISTRY[key][0]


def citation(name: str) -> str:
    """Where the genotype was published."""
    get(name)
    return _REGISTRY[{n.lower(): n for n in _REGISTRY}[name.lower()]][1]


def _darts_family(normal: list[tuple[str, int]], reduce: list[tuple[str, int]]) -> Genotype:
    concat = (2, 3, 4, 5)
    return Genotype(
        accurate=tuple(normal),
        accurate_concat=concat,
        reduce=tuple(reduce),
        reduce_concat=concat,
        robust=tuple(normal),
        robust_concat=concat,
    )


@register_genotype(
    "ARNAS",
    "Ou, Feng, Sun. Towards Accurate and Robust Architectures via Neural Architecture "
    "Search. CVPR 2024 (arXiv:2405.05502), CIFAR-10 search.",
)
def _arnas() -> Genotype:
    concat = (2, 3, 4, 5)
    return Genotype(
        accurate=(
            ("skip_connect", 0),
            ("skip_connect", 1),
            ("sep_conv_5x5", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_5x5", 3),
            ("sep_conv_3x3", 1),
            ("sep_conv_5x5", 4),
            ("skip_connect", 0),
        ),
        accurate_concat=concat,
        reduce=(
            ("avg_pool_3x3", 1),
            ("avg_pool_3x3", 0),
            ("dil_conv_5x5", 2),
            ("avg_pool_3x3", 0),
            ("dil_conv_5x5", 3),
            ("dil_conv_5x5", 2),
            ("dil_conv_5x5", 4),
            ("dil_conv_5x5", 3),
        ),
        reduce_concat=concat,
        robust=(
            ("dil_conv_5x5", 0),
            ("dil_conv_5x5", 1),
            ("dil_conv_5x5", 1),
            ("dil_conv_5x5", 2),
            ("dil_conv_3x3", 3),
            ("dil_conv_5x5", 2),
            ("dil_conv_3x3", 4),
            ("dil_conv_3x3", 3),
        ),
        robust_concat=concat,
    )


@register_genotype(
    "DARTS_V1",
    "Liu, Simonyan, Yang. DARTS: Differentiable Architecture Search. ICLR 2019 "
    "(first-order cell).",
)
def _darts_v1() -> Genotype:
    return _darts_family(
        [
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 2),
        ],
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("avg_pool_3x3", 0),
        ],
    )


@register_genotype(
    "DARTS_V2",
    "Liu, Simonyan, Yang. DARTS: Differentiable Architecture Search. ICLR 2019 "
    "(second-order cell).",
)
def _darts_v2() -> Genotype:
    return _darts_family(
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
        ],
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
        ],
    )


@register_genotype(
    "PDARTS",
    "Chen, Xie, Wu, Tian. Progressive Differentiable Architecture Search. ICCV 2019.",
)
def _pdarts() -> Genotype:
    return _darts_family(
        [
            ("skip_connect", 0),
            ("dil_conv_3x3", 1),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 3),
            ("sep_conv_3x3", 0),
            ("dil_conv_5x5", 4),
        ],
        [
            ("avg_pool_3x3", 0),
            ("sep_conv_5x5", 1),
            ("sep_conv_3x3", 0),
            ("dil_conv_5x5", 2),
            ("max_pool_3x3", 0),
            ("dil_conv_3x3", 1),
            ("dil_conv_3x3", 1),
            ("dil_conv_5x5", 3),
        ],
    )


@register_genotype(
    "ADVRUSH",
    "Mok, Na, Choi, Kim, Han, Yoon. AdvRush: Searching for Adversarially Robust Neural "
    "Architectures. ICCV 2021.",
)
def _advrush() -> Genotype:
    return _darts_family(
        [
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_5x5", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
        ],
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
            ("skip_connect", 0),
            ("avg_pool_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 2),
        ],
    )


@register_genotype(
    "RACL",
    "Dong et al. Adversarially Robust Neural Architectures (RACL). arXiv:2009.00902, 2020.",
)
def _racl() -> Genotype:
    return _darts_family(
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_5x5", 0),
            ("skip_connect", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 3),
            ("sep_conv_3x3", 3),
            ("skip_connect", 4),
        ],
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_5x5", 1),
            ("avg_pool_3x3", 0),
            ("dil_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_5x5", 1),
            ("sep_conv_3x3", 2),
            ("dil_conv_3x3", 3),
        ],
    )
