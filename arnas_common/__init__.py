"""Shared plumbing at the bottom of arnas-ray: imports no project code.

* :mod:`arnas_common.errors`: the error hierarchy (``ArnasError`` and subclasses);
* :mod:`arnas_common.config_base`: ``FrozenConfig``, the frozen, validated config base;
* :mod:`arnas_common.io`: atomic writes, untrusted file reads, safe names, directory locks;
* :mod:`arnas_common.cli`: YAML loading, ``--set`` overrides, argument parsing, ``run_cli``;
* :mod:`arnas_common.device`: device resolution;
* :mod:`arnas_common.metrics`: metric keys, the one spelling used everywhere;
* :mod:`arnas_common.rayenv`: keeping a local Ray node on 127.0.0.1 (no Ray import).

``search_spaces``, ``arnas_ray`` and ``analysis`` all build on it; the old import paths
(``search_spaces.errors``, ``search_spaces.config_base``, ``search_spaces.atomic``,
``arnas_ray.cli``, ``arnas_ray.search.metrics``) re-export it for one release.
"""

__all__: list[str] = []
