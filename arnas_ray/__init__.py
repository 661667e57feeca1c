"""The ARNAS search engine (Ray-free) and its Ray Tune / Optuna orchestration.

* ``arnas_ray.search``: the whole engine (data, attacks, MGDA, architecture step,
  metric keys, config, ``ArnasSearch``, ``python -m arnas_ray.search``); no Ray.
* ``arnas_ray.results``: a sweep's run directory as a typed record (``SweepResult``),
  the contract with ``analysis``; ``arnas_ray.pareto``: the one non-domination.
* ``arnas_ray.sweep``: the only package that imports Ray (config, Optuna bridge,
  trainable, MO-ASHA, driver, ``python -m arnas_ray.sweep``).

This package's own import stays light.
"""

__all__: list[str] = []
