"""The report's plotly figures, one function per figure, each from :class:`ReportData`."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.report.data import CURVE_KEYS, ReportData, objective_label
from arnas_ray.results import TrialStatus
from arnas_ray.search import metrics as M
from search_spaces.genotype import CELL_TYPES, Genotype


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _hover(row: pd.Series, hps: list[str]) -> str:
    lines = [f"trial {row['trial_id']} ({row['status']})",
             f"{M.CLEAN_ACC} {fmt(row[M.CLEAN_ACC])}, {M.PGD_ACC} {fmt(row[M.PGD_ACC])}",
             f"params {fmt(row.get(M.PARAMS_M))} M"]  # fmt: skip
    lines += [f"{h} = {fmt(row[h])}" for h in hps if fmt(row[h])]
    text = row.get(M.GENOTYPE)
    if isinstance(text, str):
        genotype = Genotype.from_json(text)
        lines += [f"{c}: " + ", ".join(f"{op}@{i}" for op, i in genotype.cell(c)[0]) for c in CELL_TYPES]
    return "<br>".join(html.escape(line) for line in lines)


def _markers(data: ReportData, part: pd.DataFrame) -> dict[str, Any]:
    lam = "regularization_coefficient"
    on_front = part["trial_id"].astype(str).isin(data.front)
    return {
        "size": 10 + 4 * part["robust_width"].astype(float) if "robust_width" in part else 12,
        "color": np.log10(part[lam].astype(float)) if lam in part else None,
        "coloraxis": "coloraxis", "line": {"width": np.where(on_front, 2.5, 0.5), "color": "black"},
    }  # fmt: skip


def _by_mode(finished: pd.DataFrame):
    modes = finished["arch_mode"].fillna("mgda") if "arch_mode" in finished else pd.Series("mgda", index=finished.index)
    return finished.groupby(modes)


SYMBOLS = {"mgda": "circle", "weighted": "diamond", "natural": "square", "adversarial": "x"}
LEGEND_NOTE = "bold outline = Pareto front over all objectives, colour = log10 λ, size = robust_width"


def pareto_figure(data: ReportData) -> go.Figure:
    """The search results in the plane of two objectives (each pair, for three or more)."""
    trials, hps = data.trials, data.hyperparameters
    finished = trials[trials["status"] == TrialStatus.FINISHED]
    metrics = list(data.objectives)
    pairs = [(metrics[i], metrics[j]) for i in range(len(metrics)) for j in range(i + 1, len(metrics))]
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    front = finished[finished["trial_id"].astype(str).isin(data.front)]
    knee = finished[finished["trial_id"].astype(str) == str(data.knee)]
    for col, (x, y) in enumerate(pairs, start=1):
        for mode, part in _by_mode(finished):
            fig.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="markers", name=f"arch_mode={mode}", legendgroup=mode,
                showlegend=col == 1, marker={"symbol": SYMBOLS.get(mode, "circle"), **_markers(data, part)},
                text=[_hover(r, hps) for _, r in part.iterrows()], hoverinfo="text",
            ), row=1, col=col)  # fmt: skip
        if len(metrics) == 2:  # the front is a staircase only in two dimensions
            line = front.sort_values(x)
            fig.add_trace(go.Scatter(x=line[x], y=line[y], mode="lines", name="Pareto front",
                                     line={"dash": "dash", "color": "crimson"}, hoverinfo="skip"),
                          row=1, col=col)  # fmt: skip
        fig.add_trace(go.Scatter(x=knee[x], y=knee[y], mode="markers", name="knee point", legendgroup="knee",
                                 showlegend=col == 1, hoverinfo="skip",
                                 marker={"symbol": "star", "size": 18, "color": "gold",
                                         "line": {"width": 1, "color": "black"}}), row=1, col=col)  # fmt: skip
        if col == 1 and "robust_width" in finished:  # a legend for the marker sizes
            for width in sorted(finished["robust_width"].dropna().astype(float).unique()):
                fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"robust_width {width:g}",
                                         legendgroup="size", marker={"size": 10 + 4 * width, "color": "lightgrey",
                                                                     "line": {"width": 0.5, "color": "black"}}),
                              row=1, col=col)  # fmt: skip
        fig.update_xaxes(title_text=objective_label(finished, x, data.objectives[x]), row=1, col=col)
        fig.update_yaxes(title_text=objective_label(finished, y, data.objectives[y]), row=1, col=col)
    fig.update_layout(title=f"Search results (finished searches): {LEGEND_NOTE}",
                      legend={"orientation": "h", "y": -0.25}, height=480,
                      coloraxis={"colorscale": "Viridis", "colorbar": {"title": "log10 λ"}})  # fmt: skip
    return fig


def pareto_3d_figure(data: ReportData) -> go.Figure | None:
    """Three objectives at once (the first three); front members ringed in crimson."""
    if len(data.objectives) < 3:
        return None
    x, y, z = list(data.objectives)[:3]
    finished = data.trials[data.trials["status"] == TrialStatus.FINISHED]
    fig = go.Figure()
    lam = "regularization_coefficient"
    for mode, part in _by_mode(finished):
        fig.add_trace(go.Scatter3d(
            x=part[x], y=part[y], z=part[z], mode="markers", name=f"arch_mode={mode}",
            marker={"symbol": {"weighted": "diamond", "natural": "square", "adversarial": "x"}.get(mode, "circle"),
                    "size": 6, "coloraxis": "coloraxis",
                    "color": np.log10(part[lam].astype(float)) if lam in part else None},
            text=[_hover(r, data.hyperparameters) for _, r in part.iterrows()], hoverinfo="text",
        ))  # fmt: skip
    front = finished[finished["trial_id"].astype(str).isin(data.front)]
    fig.add_trace(go.Scatter3d(x=front[x], y=front[y], z=front[z], mode="markers", name="Pareto front",
                               hoverinfo="skip", marker={"symbol": "circle-open", "size": 12,
                                                         "color": "crimson"}))  # fmt: skip
    fig.update_layout(title="Search results in 3-D (colour = log10 λ; ringed = Pareto front)", height=600,
                      legend={"orientation": "h", "y": -0.05},
                      scene={"xaxis_title": x, "yaxis_title": y, "zaxis_title": z},
                      coloraxis={"colorscale": "Viridis", "colorbar": {"title": "log10 λ"}})  # fmt: skip
    return fig


GROUP_MARKERS = {"pareto": ("circle", "Pareto genotype"), "searched": ("diamond", "searched, off the front"),
                 "random": ("x", "random genotype"), "published": ("square", "published genotype"),
                 "other": ("circle-open", "other")}


def search_help_figure(data: ReportData) -> go.Figure | None:
    """Final test scores of the trained networks by group (clean vs the verdict's attack)."""
    help_ = data.search_help
    if help_ is None:
        return None
    networks, metric = help_.networks, help_.score_metric
    fig = go.Figure()
    for group, part in networks.groupby("group"):
        symbol, label = GROUP_MARKERS.get(group, GROUP_MARKERS["other"])
        fig.add_trace(go.Scatter(
            x=part[M.CLEAN_ACC], y=part[metric], mode="markers+text", text=part["name"],
            textposition="top center", name=label, marker={"symbol": symbol, "size": 12},
        ))  # fmt: skip
    n = f", {help_.n_examples} test images" if help_.n_examples else ""
    eps = networks["eps"].dropna().unique()
    budget = f", L∞ eps {eps[0]:.3g}" if len(eps) == 1 else ""
    fig.update_layout(title=f"Trained networks on the test split: {M.CLEAN_ACC} vs {metric}{budget}{n}",
                      xaxis_title=f"{M.CLEAN_ACC} (test{n})", yaxis_title=f"{metric} (test{budget}{n})")  # fmt: skip
    return fig


def hypervolume_figure(data: ReportData) -> go.Figure:
    """Hypervolume of the finished searches against the epochs all trials had spent by then
    (what early stopping saves shows as a steeper curve)."""
    x = data.hypervolume_epochs or list(range(1, len(data.hypervolume) + 1))
    fig = go.Figure(go.Scatter(y=data.hypervolume, x=x, mode="lines+markers"))
    reference = ", ".join(f"{m} {r:.3g}" for m, r in zip(data.objectives, data.hypervolume_reference))
    fig.update_layout(title=f"Hypervolume of ({', '.join(data.objectives)}) over finished trials "
                            f"(reference point: {reference})",
                      xaxis_title="epochs spent by all trials so far (trial order)",
                      yaxis_title="hypervolume")  # fmt: skip
    return fig


def parallel_figure(data: ReportData) -> go.Figure | None:
    trials = data.trials[data.trials["status"] == TrialStatus.FINISHED]
    dims = []
    for column in dict.fromkeys([*data.hyperparameters, *data.objectives, M.PARAMS_M]):
        if column not in trials:
            continue
        values = trials[column]
        if not pd.api.types.is_numeric_dtype(values):
            categories = sorted(values.dropna().astype(str).unique())
            codes = values.astype(str).map({c: i for i, c in enumerate(categories)})
            dims.append({"label": column, "values": codes.fillna(-1),
                         "tickvals": list(range(len(categories))), "ticktext": categories})  # fmt: skip
        else:
            dims.append({"label": column, "values": values.astype(float).fillna(float("nan"))})
    if not dims or trials.empty:
        return None
    fig = go.Figure(go.Parcoords(line={"color": trials[M.PGD_ACC], "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": M.PGD_ACC}}, dimensions=dims))  # fmt: skip
    fig.update_layout(title="Hyperparameters vs objectives (finished searches)")
    return fig


def curves_figure(data: ReportData) -> go.Figure:
    fig = make_subplots(rows=2, cols=3, subplot_titles=CURVE_KEYS)
    palette = plotly.colors.qualitative.Plotly
    for n, (trial_id, curve) in enumerate(sorted(data.curves.items())):
        for k, key in enumerate(CURVE_KEYS):
            fig.add_trace(go.Scatter(x=curve[M.EPOCH], y=curve[key], mode="lines+markers", name=trial_id,
                                     legendgroup=trial_id, showlegend=k == 0,
                                     line={"color": palette[n % len(palette)]}),
                          row=k // 3 + 1, col=k % 3 + 1)  # fmt: skip
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="Per-trial learning curves: accuracies, training loss, MGDA gamma (weight of the "
                            "natural objective; none in warm-up epochs), largest softmax(alpha) weight per edge "
                            "(1/7 = undecided), PGD eps of training", height=650)  # fmt: skip
    return fig


def cell_figure(genotype: Genotype, title: str) -> go.Figure:
    """The three cells of a genotype as node-and-edge drawings (plotly shapes, no Graphviz)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{c} cell" for c in CELL_TYPES])
    for col, cell in enumerate(CELL_TYPES, start=1):
        edges, concat = genotype.cell(cell)
        nodes = len(edges) // 2
        pos = {0: (0.0, 0.0), 1: (0.0, 2.0)}
        for node in range(nodes):
            pos[node + 2] = (1.0 + node, (node % 2) * 2.0 + 0.5)
        pos["out"] = (nodes + 1.5, 1.0)
        for k, (op, src) in enumerate(edges):
            dst = 2 + k // 2
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", line={"width": 1.5},
                                     hoverinfo="text", text=f"{op}: {src} -> {dst}", showlegend=False),
                          row=1, col=col)  # fmt: skip
            fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=op, showarrow=False, font={"size": 9},
                               bgcolor="rgba(255,255,255,0.8)", row=1, col=col)  # fmt: skip
        for node in concat:
            (x0, y0), (x1, y1) = pos[node], pos["out"]
            fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", line={"dash": "dot", "color": "grey"},
                                     hoverinfo="skip", showlegend=False), row=1, col=col)  # fmt: skip
        labels = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}
        xs, ys, texts = zip(*[(x, y, labels.get(n, str(n))) for n, (x, y) in pos.items()])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", text=texts, textposition="middle center",
                                 marker={"size": 30, "color": "lightsteelblue", "line": {"width": 1}},
                                 hoverinfo="text", showlegend=False), row=1, col=col)  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=380)
    return fig




def operations_figure(data: ReportData) -> go.Figure | None:
    """Claim (b): share of each operation in the accurate and the robust cells, in the
    searched genotypes and in the final alphas."""
    claims = data.claims
    if claims is None or claims.operations.empty:
        return None
    sources = list(dict.fromkeys(claims.operations["source"]))
    titles = {"genotype": "searched genotypes (share of kept edges)",
              "alphas": "final alphas (mean softmax weight over edges)"}
    fig = make_subplots(rows=1, cols=len(sources), subplot_titles=[titles.get(s, s) for s in sources])
    colours = {"accurate": "#1f77b4", "robust": "#d62728"}
    for col, source in enumerate(sources, start=1):
        part = claims.operations[claims.operations["source"] == source]
        for cell, rows in part.groupby("cell", sort=False):
            fig.add_trace(go.Bar(x=rows["op"], y=rows["share"], name=f"{cell} cells", marker_color=colours.get(cell),
                                 legendgroup=cell, showlegend=col == 1), row=1, col=col)  # fmt: skip
    fig.update_yaxes(title_text="share", range=[0, 1])
    fig.update_layout(barmode="group", height=420, title=f"Operations near the input (accurate) and the output "
                      f"(robust), over {claims.searches_with_robust_cells} searches with both cell types")
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
        fig.add_trace(go.Scatter(
            x=part["trial_id"], y=part[M.MGDA_GAMMA_MEAN], mode="markers", name=f"normalization {mode}",
            marker={"size": 12, "line": {"width": np.where(part["on_front"], 2.5, 0.5), "color": "black"}},
        ))  # fmt: skip
    fig.update_yaxes(range=[-0.05, 1.05], title_text=f"{M.MGDA_GAMMA_MEAN} (1 = natural objective only)")
    fig.update_layout(title="MGDA gamma per trial (bold outline: on the Pareto front)", xaxis_title="trial")
    return fig
