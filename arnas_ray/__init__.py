"""The ARNAS search engine (Ray-free) and its Ray Tune / Optuna orchestration.

Import the parts you need: ``arnas_ray.data``, ``arnas_ray.attacks``,
``arnas_ray.mgda``, ``arnas_ray.architect``, ``arnas_ray.search`` (engine and
``python -m arnas_ray.search``), ``arnas_ray.trainable`` and
``arnas_ray.sweep`` (the only modules that import Ray). This package's own
import stays light.
"""

__all__: list[str] = []
