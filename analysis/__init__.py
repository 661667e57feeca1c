"""Analysis of ARNAS results: adversarial training, robustness scoring, Pareto fronts, reports."""

__all__: list[str] = []
