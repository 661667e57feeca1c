"""The objectives' fixed bounds, from which a sweep's hypervolume reference point is set.

Ray-free. Computed from the space alone, never from the trials a sweep sampled, so two
sweeps over one space have comparable hypervolumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arnas_common import metrics as M
from arnas_ray.search.run_config import RunConfig
from arnas_ray.sweep.space import ParamSpec

__all__ = ["ACCURACY_BOUND", "objective_bounds"]

#: Fixed bounds of the objectives that are accuracies (a reference point must not depend on
#: the trials a sweep happened to sample, or two sweeps' hypervolumes cannot be compared).
ACCURACY_BOUND = 0.0
#: Space keys (and the params size keys) that change the size of a derived network.
_SIZE_KEYS = (
    "layers",
    "nodes",
    "stem_multiplier",
    "robust_start",
    "robust_width",
    "primitives",
    "params_layers",
    "params_channels",
)


def objective_bounds(
    objectives: Mapping[str, str], search_space: Mapping[str, ParamSpec], fixed: Mapping[str, Any]
) -> dict[str, float]:
    """The worst value each objective can take in this sweep's space, computed, not observed:
    0 for accuracies, and for ``params_m`` the parameters (millions) of the largest network
    the space can derive at ``params_layers`` x ``params_channels``: every edge the
    operation with the most parameters, over every sampled value of the keys that change
    the size (choices: each value; ranges: both ends). Pure: the same space gives the
    same bounds, whatever its trials."""
    bounds = {m: ACCURACY_BOUND for m in objectives if m != M.PARAMS_M}
    if M.PARAMS_M in objectives:
        bounds[M.PARAMS_M] = _largest_params_m(search_space, fixed)
    return bounds


def _largest_params_m(search_space: Mapping[str, ParamSpec], fixed: Mapping[str, Any]) -> float:
    import itertools

    import torch

    from arnas_ray.search.config import space_for
    from search_spaces.genotype import Genotype
    from search_spaces.network import Network
    from search_spaces.network import count_parameters
    from search_spaces.spec import NetworkSpec

    sampled = {k: spec.probe_values() for k, spec in search_space.items() if k in _SIZE_KEYS}
    largest = 0
    for values in itertools.islice(itertools.product(*sampled.values()), 256):
        run = RunConfig.from_flat(fixed).with_dotted(dict(zip(sampled, values)))
        search = run.search
        space = space_for(search, run.space)
        for op in space.primitives:
            edges = tuple((op, j) for _ in range(space.nodes) for j in (0, 1))
            concat = tuple(range(2, 2 + space.nodes))
            genotype = Genotype(
                edges, concat, edges, concat, edges, concat, primitives=space.primitives
            )
            spec = NetworkSpec.from_space(genotype, space).resized(
                layers=search.params_layers, init_channels=search.params_channels
            )
            with torch.device("meta"):
                largest = max(largest, count_parameters(Network.from_spec(spec)))
    return largest / 1e6
