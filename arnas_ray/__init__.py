"""The ARNAS search engine (Ray-free) and its Ray Tune / Optuna orchestration.

Import the parts you need: ``arnas_ray.search.data``, ``arnas_ray.search.attacks``,
``arnas_ray.search.mgda``, ``arnas_ray.search.architect``, ``arnas_ray.search`` (engine and
``python -m arnas_ray.search``), ``arnas_ray.sweep.trainable`` and
``arnas_ray.sweep`` (the only modules that import Ray). This package's own
import stays light.
"""

__all__: list[str] = []
