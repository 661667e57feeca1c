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

from analysis.report.data import CURVE_KEYS
from analysis.report.data import ReportData
from analysis.report.data import objective_label
from arnas_common import metrics as M
from arnas_ray.results import TrialStatus
from search_spaces.genotype import CELL_TYPES
from search_spaces.genotype import Genotype


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _hover(row: pd.Series, hps: list[str]) -> str:
    lines = [
        f"trial {row['trial_id']} ({row['status']})",
        f"{M.CLEAN_ACC} {fmt(row[M.CLEAN_ACC])}, {M.PGD_ACC} {fmt(row[M.PGD_ACC])}",
        f"params {fmt(row.get(M.PARAMS_M))} M",
    ]
    lines += [f"{h} = {fmt(row[h])}" for h in hps if fmt(row[h])]
    text = row.get(M.GENOTYPE)
    if isinstance(text, str):
        genotype = Genotype.from_json(text)
        lines += [
            f"{c}: " + ", ".join(f"{op}@{i}" for op, i in genotype.cell(c)[0]) for c in CELL_TYPES
        ]
    return "<br>".join(html.escape(line) for line in lines)


def _markers(data: ReportData, part: pd.DataFrame) -> dict[str, Any]:
    lam = "regularization_coefficient"
    on_front = part["trial_id"].astype(str).isin(data.front)
    return {
        "size": 10 + 4 * part["robust_width"].astype(float) if "robust_width" in part else 12,
        "color": np.log10(part[lam].astype(float)) if lam in part else None,
        "coloraxis": "coloraxis",
        "line": {"width": np.where(on_front, 2.5, 0.5), "color": "black"},
    }


def _by_mode(finished: pd.DataFrame):
    modes = (
        finished["arch_mode"].fillna("mgda")
        if "arch_mode" in finished
        else pd.Series("mgda", index=finished.index)
    )
    return finished.groupby(modes)


SYMBOLS = {"mgda": "circle", "weighted": "diamond", "natural": "square", "adversarial": "x"}
LEGEND_NOTE = (
    "bold outline = Pareto front over all objectives, colour = log10 λ, size = robust_width"
)


def pareto_figure(data: ReportData) -> go.Figure:
    """The search results in the plane of two objectives (each pair, for three or more)."""
    trials, hps = data.trials, data.hyperparameters
    finished = trials[trials["status"] == TrialStatus.FINISHED]
    metrics = list(data.objectives)
    pairs = [
        (metrics[i], metrics[j]) for i in range(len(metrics)) for j in range(i + 1, len(metrics))
    ]
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    front = finished[finished["trial_id"].astype(str).isin(data.front)]
    knee = finished[finished["trial_id"].astype(str) == str(data.knee)]
    infeasible = (
        finished[finished["feasible"].eq(False)] if "feasible" in finished else finished.iloc[:0]
    )
    feasible = finished.drop(index=infeasible.index)
    for col, (x, y) in enumerate(pairs, start=1):
        if len(infeasible):  # greyed: kept in the record, never on the front
            fig.add_trace(
                go.Scatter(
                    x=infeasible[x],
                    y=infeasible[y],
                    mode="markers",
                    name="infeasible (misses a constraint)",
                    legendgroup="infeasible",
                    showlegend=col == 1,
                    marker={"symbol": "circle-open", "size": 11, "color": "lightgrey"},
                    text=[_hover(r, hps) for _, r in infeasible.iterrows()],
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
        for axis, metric in (("x", x), ("y", y)):  # the constraint limits on these axes
            limit = data.constraints.get(metric)
            if limit:
                ((side, value),) = limit.items()
                line = {"dash": "dot", "color": "grey"}
                label = f"{metric} {'<=' if side == 'max' else '>='} {value:g}"
                if axis == "x":
                    fig.add_vline(x=value, line=line, annotation_text=label, row=1, col=col)
                else:
                    fig.add_hline(y=value, line=line, annotation_text=label, row=1, col=col)
        for mode, part in _by_mode(feasible):
            fig.add_trace(
                go.Scatter(
                    x=part[x],
                    y=part[y],
                    mode="markers",
                    name=f"arch_mode={mode}",
                    legendgroup=mode,
                    showlegend=col == 1,
                    marker={"symbol": SYMBOLS.get(mode, "circle"), **_markers(data, part)},
                    text=[_hover(r, hps) for _, r in part.iterrows()],
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
        if len(metrics) == 2:  # the front is a staircase only in two dimensions
            line = front.sort_values(x)
            fig.add_trace(
                go.Scatter(
                    x=line[x],
                    y=line[y],
                    mode="lines",
                    name="Pareto front",
                    line={"dash": "dash", "color": "crimson"},
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
        fig.add_trace(
            go.Scatter(
                x=knee[x],
                y=knee[y],
                mode="markers",
                name="knee point",
                legendgroup="knee",
                showlegend=col == 1,
                hoverinfo="skip",
                marker={
                    "symbol": "star",
                    "size": 18,
                    "color": "gold",
                    "line": {"width": 1, "color": "black"},
                },
            ),
            row=1,
            col=col,
        )
        if col == 1 and "robust_width" in finished:  # a legend for the marker sizes
            for width in sorted(finished["robust_width"].dropna().astype(float).unique()):
                fig.add_trace(
                    go.Scatter(
                        x=[None],
                        y=[None],
                        mode="markers",
                        name=f"robust_width {width:g}",
                        legendgroup="size",
                        marker={
                            "size": 10 + 4 * width,
                            "color": "lightgrey",
                            "line": {"width": 0.5, "color": "black"},
                        },
                    ),
                    row=1,
                    col=col,
                )
        fig.update_xaxes(
            title_text=objective_label(finished, x, data.objectives[x]), row=1, col=col
        )
        fig.update_yaxes(
            title_text=objective_label(finished, y, data.objectives[y]), row=1, col=col
        )
    fig.update_layout(
        title=f"Search results (finished searches): {LEGEND_NOTE}",
        legend={"orientation": "h", "y": -0.25},
        height=480,
        coloraxis={"colorscale": "Viridis", "colorbar": {"title": "log10 λ"}},
    )
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
        fig.add_trace(
            go.Scatter3d(
                x=part[x],
                y=part[y],
                z=part[z],
                mode="markers",
                name=f"arch_mode={mode}",
                marker={
                    "symbol": {"weighted": "diamond", "natural": "square", "adversarial": "x"}.get(
                        mode, "circle"
                    ),
                    "size": 6,
                    "coloraxis": "coloraxis",
                    "color": np.log10(part[lam].astype(float)) if lam in part else None,
                },
                text=[_hover(r, data.hyperparameters) for _, r in part.iterrows()],
                hoverinfo="text",
            )
        )
    front = finished[finished["trial_id"].astype(str).isin(data.front)]
    fig.add_trace(
        go.Scatter3d(
            x=front[x],
            y=front[y],
            z=front[z],
            mode="markers",
            name="Pareto front",
            hoverinfo="skip",
            marker={"symbol": "circle-open", "size": 12, "color": "crimson"},
        )
    )
    fig.update_layout(
        title="Search results in 3-D (colour = log10 λ; ringed = Pareto front)",
        height=600,
        legend={"orientation": "h", "y": -0.05},
        scene={"xaxis_title": x, "yaxis_title": y, "zaxis_title": z},
        coloraxis={"colorscale": "Viridis", "colorbar": {"title": "log10 λ"}},
    )
    return fig


def hypervolume_figure(data: ReportData) -> go.Figure:
    """Hypervolume of the finished (feasible) searches against the epochs all trials had
    spent by then (what early stopping saves shows as a steeper curve)."""
    x = data.hypervolume_epochs or list(range(1, len(data.hypervolume) + 1))
    fig = go.Figure(go.Scatter(y=data.hypervolume, x=x, mode="lines+markers"))
    reference = ", ".join(
        f"{m} {r:.3g}" for m, r in zip(data.objectives, data.hypervolume_reference)
    )
    where = (
        "the sweep's declared reference point"
        if data.reference_declared
        else "a reference from this sweep's own trials, not comparable across sweeps"
    )
    fig.update_layout(
        title=f"Hypervolume of ({', '.join(data.objectives)}) over finished trials "
        f"(reference point: {reference}; {where})",
        xaxis_title="epochs spent by all trials so far (trial order)",
        yaxis_title="hypervolume",
    )
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
            dims.append(
                {
                    "label": column,
                    "values": codes.fillna(-1),
                    "tickvals": list(range(len(categories))),
                    "ticktext": categories,
                }
            )
        else:
            dims.append({"label": column, "values": values.astype(float).fillna(float("nan"))})
    if not dims or trials.empty:
        return None
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": trials[M.PGD_ACC],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": M.PGD_ACC},
            },
            dimensions=dims,
        )
    )
    fig.update_layout(title="Hyperparameters vs objectives (finished searches)")
    return fig


def curves_figure(data: ReportData) -> go.Figure:
    fig = make_subplots(rows=2, cols=3, subplot_titles=CURVE_KEYS)
    palette = plotly.colors.qualitative.Plotly
    for n, (trial_id, curve) in enumerate(sorted(data.curves.items())):
        for k, key in enumerate(CURVE_KEYS):
            fig.add_trace(
                go.Scatter(
                    x=curve[M.EPOCH],
                    y=curve[key],
                    mode="lines+markers",
                    name=trial_id,
                    legendgroup=trial_id,
                    showlegend=k == 0,
                    line={"color": palette[n % len(palette)]},
                ),
                row=k // 3 + 1,
                col=k % 3 + 1,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(
        title="Per-trial learning curves: accuracies, training loss, MGDA gamma (weight of the "
        "natural objective; none in warm-up epochs), largest softmax(alpha) weight per edge "
        "(1/7 = undecided), PGD eps of training",
        height=650,
    )
    return fig
