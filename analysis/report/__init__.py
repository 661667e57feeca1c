"""``python -m analysis.report RUN_DIR``: one self-contained interactive HTML report.

Built in two steps, as Optuna's visualisation does: :func:`build_report_data`
(``data``) computes a pure :class:`ReportData`, tested directly;
:func:`render_html` (``page``, drawing with ``figures``) embeds plotly.js once,
so ``report.html`` opens offline by double-click. Also writes ``pareto.csv``.

Sections: the sweep's Pareto front over all its objectives (each pair of
objectives as a plane, and a 3-D view for three; colour = lambda, symbol =
architecture mode, size = robust_width; hover = trial, hyperparameters,
parameters, genotype), hypervolume against the epochs spent, parallel
coordinates, learning and MGDA-gamma curves per trial, the cells of the
knee-point genotype, "Does the search help?" (final scores of Pareto, random
and published genotypes) and a sortable table.
"""

from analysis.report.data import ReportData
from analysis.report.data import build_report_data
from analysis.report.page import render_html
from analysis.report.page import write_report

__all__ = ["ReportData", "build_report_data", "render_html", "write_report"]
