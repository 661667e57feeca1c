"""The report's figures of the method check: trained networks' final scores by group
(\"Does the search help?\"), operations per cell type and MGDA's gamma (\"The paper's
claims, tested\"), each from :class:`~analysis.report.data.ReportData`."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.report.data import ReportData
from arnas_common import metrics as M

__all__ = ["gamma_figure", "operations_figure", "search_help_figure"]


GROUP_MARKERS = {
    "pareto": ("circle", "Pareto genotype"),
    "searched": ("diamond", "searched, off the front"),
    "random": ("x", "random genotype"),
    "published": ("square", "published genotype"),
    "other": ("circle-open", "other"),
}


def search_help_figure(data: ReportData) -> go.Figure | None:
    """Final test scores of the trained networks by group (clean vs the verdict's attack)."""
    help_ = data.search_help
    if help_ is None:
        return None
    networks, metric = help_.networks, help_.score_metric
    fig = go.Figure()
    for group, part in networks.groupby("group"):
        symbol, label = GROUP_MARKERS.get(group, GROUP_MARKERS["other"])
        fig.add_trace(
            go.Scatter(
                x=part[M.CLEAN_ACC],
                y=part[metric],
                mode="markers+text",
                text=part["name"],
                textposition="top center",
                name=label,
                marker={"symbol": symbol, "size": 12},
            )
        )
    n = f", {help_.n_examples} test images" if help_.n_examples else ""
    eps = networks["eps"].dropna().unique()
    budget = f", L∞ eps {eps[0]:.3g}" if len(eps) == 1 else ""
    fig.update_layout(
        title=f"Trained networks on the test split: {M.CLEAN_ACC} vs {metric}{budget}{n}",
        xaxis_title=f"{M.CLEAN_ACC} (test{n})",
        yaxis_title=f"{metric} (test{budget}{n})",
    )
    return fig


def operations_figure(data: ReportData) -> go.Figure | None:
    """Claim (b): share of each operation in the accurate and the robust cells, in the
    searched genotypes and in the final alphas."""
    claims = data.claims
    if claims is None or claims.operations.empty:
        return None
    sources = list(dict.fromkeys(claims.operations["source"]))
    titles = {
        "genotype": "searched genotypes (share of kept edges)",
        "alphas": "final alphas (mean softmax weight over edges)",
    }
    fig = make_subplots(
        rows=1, cols=len(sources), subplot_titles=[titles.get(s, s) for s in sources]
    )
    colours = {"accurate": "#1f77b4", "robust": "#d62728"}
    for col, source in enumerate(sources, start=1):
        part = claims.operations[claims.operations["source"] == source]
        for cell, rows in part.groupby("cell", sort=False):
            fig.add_trace(
                go.Bar(
                    x=rows["op"],
                    y=rows["share"],
                    name=f"{cell} cells",
                    marker_color=colours.get(cell),
                    legendgroup=cell,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(title_text="share", range=[0, 1])
    fig.update_layout(
        barmode="group",
        height=420,
        title=f"Operations near the input (accurate) and the output "
        f"(robust), over {claims.searches_with_robust_cells} searches with both cell types",
    )
    return fig


def gamma_figure(data: ReportData) -> go.Figure | None:
    """MGDA's balance: the mean weight of the natural objective per trial, by normalisation."""
    claims = data.claims
    if claims is None or claims.gamma.empty:
        return None
    gamma = claims.gamma[claims.gamma["arch_mode"] == "mgda"]
    if gamma.empty:
        return None
    fig = go.Figure()
    for mode, part in gamma.groupby("mgda_normalization"):
        fig.add_trace(
            go.Scatter(
                x=part["trial_id"],
                y=part[M.MGDA_GAMMA_MEAN],
                mode="markers",
                name=f"normalization {mode}",
                marker={
                    "size": 12,
                    "line": {"width": np.where(part["on_front"], 2.5, 0.5), "color": "black"},
                },
            )
        )
    fig.update_yaxes(
        range=[-0.05, 1.05], title_text=f"{M.MGDA_GAMMA_MEAN} (1 = natural objective only)"
    )
    fig.update_layout(
        title="MGDA gamma per trial (bold outline: on the Pareto front)", xaxis_title="trial"
    )
    return fig
