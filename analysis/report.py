"""``python -m analysis.report RUN_DIR``: one self-contained interactive HTML report.

Built in two steps, as Optuna's visualisation does: :func:`build_report_data`
computes a pure :class:`ReportData` (tested directly), :func:`render_html`
draws it with plotly and embeds plotly.js once, so ``report.html`` opens
offline by double-click. Also writes ``pareto.csv``.

Sections: the sweep's Pareto front over all its objectives (each pair of
objectives as a plane, and a 3-D view for three; colour = lambda, symbol =
architecture mode, size = robust_width;
hover = trial, hyperparameters, parameters, genotype), the front of final
AutoAttack scores when ``RUN_DIR/scores/*.json`` exist (published baselines
marked), hypervolume over trials, parallel coordinates, learning and MGDA-gamma
curves per trial, the cells of the knee-point genotype, and a sortable table.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import plotly.offline
import yaml
from plotly.subplots import make_subplots

from analysis.baselines import PUBLISHED
from analysis.fidelity import SearchHelpData, build_search_help_data
from analysis.pareto import hypervolume_history, knee_point, non_dominated
from arnas_ray import metrics as M
from arnas_ray._cli import HelpFormatter, run_cli
from search_spaces._io import atomic_write_text
from search_spaces.errors import ArnasError
from search_spaces.genotype import CELL_TYPES, Genotype

__all__ = ["ReportData", "build_report_data", "render_html", "write_report"]

CURVE_KEYS = (M.CLEAN_ACC, M.PGD_ACC, M.TRAIN_LOSS, M.MGDA_GAMMA_MEAN, M.ALPHA_MAX_WEIGHT, M.TRAIN_EPS)


@dataclass
class ReportData:
    """Everything the report shows, before any drawing."""

    name: str
    trials: pd.DataFrame  # one row per trial (trials.parquet)
    hyperparameters: list[str]  # hp_* columns
    objectives: dict[str, str]  # metric -> direction, as the sweep optimised them
    front: list[str]  # trial_ids on the Pareto front of finished searches (all objectives)
    knee: str | None  # trial_id of the knee point
    hypervolume: list[float]  # after each finished trial, in trial order
    hypervolume_reference: list[float]  # per objective
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)  # trial_id -> per-epoch metrics
    scores: pd.DataFrame | None = None  # final robustness scores (scores/*.json)
    scores_front: list[str] = field(default_factory=list)
    knee_genotype: Genotype | None = None
    search_help: SearchHelpData | None = None  # "Does the search help?" (needs scores)


def _read_curves(trials: pd.DataFrame) -> dict[str, pd.DataFrame]:
    curves = {}
    for row in trials.itertuples():
        directory = getattr(row, "path", None)
        path = Path(directory) / "result.json" if isinstance(directory, str) else None
        if path is None or not path.is_file():
            continue
        records = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records.append({k: record.get(k) for k in (M.EPOCH, *CURVE_KEYS)})
        if records:
            curves[str(row.trial_id)] = pd.DataFrame(records)
    return curves


def _read_scores(run_dir: Path) -> pd.DataFrame | None:
    rows = []
    for path in sorted((run_dir / "scores").glob("*.json")):
        record = json.loads(path.read_text())
        rows.append({"name": record.get("name", path.stem), M.CLEAN_ACC: record.get(M.CLEAN_ACC),
                     M.AUTOATTACK_ACC: record.get(M.AUTOATTACK_ACC), "params": record.get("params"),
                     "eps": record.get("eps"),
                     "baseline": record.get("name", "") in PUBLISHED})  # fmt: skip
    return pd.DataFrame(rows) if rows else None


def build_report_data(run_dir: str | Path) -> ReportData:
    """Read a sweep directory into :class:`ReportData`."""
    run_dir = Path(run_dir)
    path = run_dir / "trials.parquet"
    if not path.is_file():
        raise ArnasError(f"'{run_dir}' has no trials.parquet; is it the run directory of a sweep?")
    trials = pd.read_parquet(path)
    hps = [c for c in trials.columns if c.startswith("hp_")]
    name, objectives = run_dir.name, dict(M.DEFAULT_OBJECTIVES)
    sweep_yaml = run_dir / "sweep.yaml"
    if sweep_yaml.is_file():
        sweep = yaml.safe_load(sweep_yaml.read_text()) or {}
        name, objectives = sweep.get("name", name), dict(sweep.get("objectives") or objectives)
    missing = [m for m in objectives if m not in trials]
    if missing:
        raise ArnasError(f"'{path}' has no column for objective(s) {', '.join(missing)}")
    metrics, directions = list(objectives), list(objectives.values())
    finished = trials[trials["status"] == "FINISHED"].dropna(subset=metrics).reset_index(drop=True)
    points = finished[metrics].to_numpy(float)
    front, knee, knee_genotype = [], None, None
    if len(finished):
        front = finished.loc[non_dominated(points, directions), "trial_id"].astype(str).tolist()
        knee_index = knee_point(points, directions)
        knee = str(finished.loc[knee_index, "trial_id"])
        text = finished.loc[knee_index, M.GENOTYPE]
        knee_genotype = Genotype.from_json(text) if isinstance(text, str) else None
    reference = hypervolume_reference(points, directions)
    history = hypervolume_history(points, reference, directions).tolist() if len(finished) else []
    scores = _read_scores(run_dir)
    scores_front = []
    if scores is not None and scores[M.AUTOATTACK_ACC].notna().any():
        valid = scores.dropna(subset=[M.CLEAN_ACC, M.AUTOATTACK_ACC]).reset_index(drop=True)
        idx = non_dominated(valid[[M.CLEAN_ACC, M.AUTOATTACK_ACC]].to_numpy(float), ["maximize", "maximize"])
        scores_front = valid.loc[idx, "name"].tolist()
    return ReportData(name=name, trials=trials, hyperparameters=hps, objectives=objectives, front=front,
                      knee=knee, hypervolume=history, hypervolume_reference=reference,
                      curves=_read_curves(trials), scores=scores, scores_front=scores_front,
                      knee_genotype=knee_genotype, search_help=build_search_help_data(run_dir))  # fmt: skip


def hypervolume_reference(points: np.ndarray, directions: list[str]) -> list[float]:
    """0 for maximised metrics (accuracies); 1.1 x the largest value for minimised ones."""
    reference = []
    for k, direction in enumerate(directions):
        column = points[:, k] if len(points) else np.zeros(1)
        if direction == "maximize":
            reference.append(min(0.0, float(column.min())))
        else:
            reference.append(1.1 * float(column.max()) if column.max() > 0 else 1.0)
    return reference


# ---------------------------------------------------------------------------------- drawing
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _hover(row: pd.Series, hps: list[str]) -> str:
    lines = [f"trial {row['trial_id']} ({row['status']})",
             f"{M.CLEAN_ACC} {_fmt(row[M.CLEAN_ACC])}, {M.PGD_ACC} {_fmt(row[M.PGD_ACC])}",
             f"params {_fmt(row.get(M.PARAMS_M))} M"]  # fmt: skip
    lines += [f"{h[3:]} = {_fmt(row[h])}" for h in hps if _fmt(row[h])]
    text = row.get(M.GENOTYPE)
    if isinstance(text, str):
        genotype = Genotype.from_json(text)
        lines += [f"{c}: " + ", ".join(f"{op}@{i}" for op, i in genotype.cell(c)[0]) for c in CELL_TYPES]
    return "<br>".join(html.escape(line) for line in lines)


def objective_label(trials: pd.DataFrame, metric: str, direction: str = "maximize") -> str:
    """Axis label of a search objective, with the attack and sample size behind it."""
    def single(column: str) -> Any:
        values = trials[column].dropna().unique() if column in trials else []
        return values[0] if len(values) == 1 else None

    n = single(M.VAL_EXAMPLES)
    where = f"{int(n)} validation images" if n is not None else "validation split"
    if metric == M.PGD_ACC:
        eps, steps = single(M.VAL_EPS), single(M.VAL_PGD_STEPS)
        attack = f"PGD-{int(steps)}" if steps is not None else "PGD"
        budget = f"L∞ eps {eps:.3g}" if eps is not None else "each trial's eps"
        return f"{metric} (supernet, {attack}, {budget}, {where})"
    if metric == M.PARAMS_M:
        return f"{metric} (derived network, millions; {direction})"
    return f"{metric} (supernet, {where})"


def _markers(data: ReportData, part: pd.DataFrame) -> dict[str, Any]:
    lam = "hp_regularization_coefficient"
    on_front = part["trial_id"].astype(str).isin(data.front)
    return {
        "size": 10 + 4 * part["hp_robust_width"].astype(float) if "hp_robust_width" in part else 12,
        "color": np.log10(part[lam].astype(float)) if lam in part else None,
        "coloraxis": "coloraxis", "line": {"width": np.where(on_front, 2.5, 0.5), "color": "black"},
    }  # fmt: skip


def _by_mode(finished: pd.DataFrame):
    modes = finished["hp_arch_mode"].fillna("mgda") if "hp_arch_mode" in finished else pd.Series("mgda", index=finished.index)
    return finished.groupby(modes)


SYMBOLS = {"mgda": "circle", "weighted": "diamond", "natural": "square", "adversarial": "x"}
LEGEND_NOTE = "bold outline = Pareto front over all objectives, colour = log10 λ, size = robust_width"


def pareto_figure(data: ReportData) -> go.Figure:
    """The search results in the plane of two objectives (each pair, for three or more)."""
    trials, hps = data.trials, data.hyperparameters
    finished = trials[trials["status"] == "FINISHED"]
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
    finished = data.trials[data.trials["status"] == "FINISHED"]
    fig = go.Figure()
    lam = "hp_regularization_coefficient"
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
    eps = data.scores["eps"].dropna().unique() if data.scores is not None and "eps" in data.scores else []
    budget = f", L∞ eps {eps[0]:.3g}" if len(eps) == 1 else ""
    fig.update_layout(title=f"Trained networks on the test split: {M.CLEAN_ACC} vs {metric}{budget}{n}",
                      xaxis_title=f"{M.CLEAN_ACC} (test{n})", yaxis_title=f"{metric} (test{budget}{n})")  # fmt: skip
    return fig


def search_help_html(data: ReportData) -> str:
    """The verdict and the proxy-fidelity table."""
    help_ = data.search_help
    if help_ is None:
        return ("<p>No final scores yet: train and score the sweep's genotypes with random baselines "
                "(<code>python -m analysis.train --sweep RUN_DIR --random 6 --also 2 ...</code>, then "
                "<code>python -m analysis.score --sweep RUN_DIR</code>) to answer this section.</p>")
    rows = []
    for r in help_.correlations.itertuples():
        def cell(value: float, low: float, high: float) -> str:
            return "n/a" if math.isnan(value) else f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"

        rows.append(f"<tr><td>{html.escape(r.proxy)} (search)</td><td>{html.escape(r.score)} (final)</td>"
                    f"<td>{r.n}</td><td>{cell(r.kendall_tau, r.kendall_low, r.kendall_high)}</td>"
                    f"<td>{cell(r.spearman_rho, r.spearman_low, r.spearman_high)}</td></tr>")  # fmt: skip
    counts = help_.networks["group"].value_counts().to_dict()
    return (f"<p><b>{html.escape(help_.verdict)}</b></p>"
            f"<p>Networks: {html.escape(', '.join(f'{v} {k}' for k, v in counts.items()))}. Proxy fidelity: "
            "rank correlation between each search-time proxy (supernet on the validation split) and each "
            "final score of the trained networks that came from search trials, with percentile-bootstrap "
            "95 % intervals.</p>"
            "<table><thead><tr><th>proxy</th><th>final score</th><th>n</th><th>Kendall τ [95 % CI]</th>"
            f"<th>Spearman ρ [95 % CI]</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def hypervolume_figure(data: ReportData) -> go.Figure:
    fig = go.Figure(go.Scatter(y=data.hypervolume, x=list(range(1, len(data.hypervolume) + 1)), mode="lines+markers"))
    reference = ", ".join(f"{m} {r:.3g}" for m, r in zip(data.objectives, data.hypervolume_reference))
    fig.update_layout(title=f"Hypervolume of ({', '.join(data.objectives)}) over finished trials "
                            f"(reference point: {reference})",
                      xaxis_title="finished trials (trial order)", yaxis_title="hypervolume")  # fmt: skip
    return fig


def parallel_figure(data: ReportData) -> go.Figure | None:
    trials = data.trials[data.trials["status"] == "FINISHED"]
    dims = []
    for column in dict.fromkeys([*data.hyperparameters, *data.objectives, M.PARAMS_M]):
        if column not in trials:
            continue
        values = trials[column]
        if not pd.api.types.is_numeric_dtype(values):
            categories = sorted(values.dropna().astype(str).unique())
            codes = values.astype(str).map({c: i for i, c in enumerate(categories)})
            dims.append({"label": column.removeprefix("hp_"), "values": codes.fillna(-1),
                         "tickvals": list(range(len(categories))), "ticktext": categories})  # fmt: skip
        else:
            dims.append({"label": column.removeprefix("hp_"), "values": values.astype(float).fillna(float("nan"))})
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


_TABLE_SCRIPT = """
function sortTable(th){const table=th.closest('table');const i=[...th.parentNode.children].indexOf(th);
const rows=[...table.tBodies[0].rows];const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
rows.sort((a,b)=>{const x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;const nx=parseFloat(x),ny=parseFloat(y);
const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
rows.forEach(r=>table.tBodies[0].appendChild(r));}
"""


def table_html(data: ReportData) -> str:
    columns = ["trial_id", "status", *dict.fromkeys([*data.objectives, M.CLEAN_ACC, M.PGD_ACC, M.PARAMS_M]),
               M.ALPHA_MAX_WEIGHT, *data.hyperparameters, "epochs_done", "time_total_s"]
    columns = [c for c in columns if c in data.trials]
    head = "".join(f"<th onclick='sortTable(this)'>{html.escape(c.removeprefix('hp_'))} &#x2195;</th>" for c in columns)
    body = []
    for _, row in data.trials.iterrows():
        mark = " class='front'" if str(row["trial_id"]) in data.front else ""
        cells = "".join(f"<td data-v='{html.escape(_fmt(row[c]))}'>{html.escape(_fmt(row[c]))}</td>" for c in columns)
        body.append(f"<tr{mark}>{cells}</tr>")
    return (f"<table id='trials'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<script>{_TABLE_SCRIPT}</script>")  # fmt: skip


def render_html(data: ReportData) -> str:
    """The whole report as one HTML string with plotly.js embedded."""
    figures = [("Pareto front of the sweep", pareto_figure(data)),
               ("Pareto front in three objectives", pareto_3d_figure(data)),

               ("Hypervolume", hypervolume_figure(data)),
               ("Parallel coordinates", parallel_figure(data)),
               ("Learning curves", curves_figure(data))]  # fmt: skip
    if data.knee_genotype is not None:
        figures.append(("Cells of the knee-point architecture",
                        cell_figure(data.knee_genotype, f"Cells of trial {data.knee} (knee of the front)")))
    sections = []
    for title, fig in figures:
        if fig is None:
            continue
        sections.append(f"<h2>{html.escape(title)}</h2>"
                        + fig.to_html(full_html=False, include_plotlyjs=False, config={"responsive": True}))
    counts = data.trials["status"].value_counts().to_dict()
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    objectives = ", ".join(f"{m} ({d})" for m, d in data.objectives.items())
    figure = search_help_figure(data)
    help_figure = "" if figure is None else figure.to_html(full_html=False, include_plotlyjs=False)
    attack = ""
    if M.PGD_ACC in data.objectives:
        label = objective_label(data.trials[data.trials["status"] == "FINISHED"], M.PGD_ACC)
        attack = "; " + label.split("(", 1)[1].rstrip(")").replace("supernet, ", "pgd_acc: ")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>arnas-ray report: {html.escape(data.name)}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px}} th{{cursor:pointer;background:#eef}} tr.front{{background:#ffe}}</style>
</head><body>
<h1>arnas-ray sweep report: {html.escape(data.name)}</h1>
<p>{len(data.trials)} trials ({html.escape(summary)}); {len(data.front)} on the Pareto front of finished searches;
knee point: trial {html.escape(str(data.knee))}. Objectives: {html.escape(objectives)} of the search result
(accuracies of the supernet on the validation split{html.escape(attack)}); final scores come from
<code>analysis.score</code> on the test split.</p>
{''.join(sections)}
<h2>Does the search help?</h2>{search_help_html(data)}{help_figure}
<h2>Trials</h2>{table_html(data)}
</body></html>
"""


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` and ``pareto.csv`` into ``run_dir``."""
    run_dir = Path(run_dir)
    data = build_report_data(run_dir)
    front = data.trials[data.trials["trial_id"].astype(str).isin(data.front)]
    atomic_write_text(run_dir / "pareto.csv", front.drop(columns=["path"], errors="ignore").to_csv(index=False))
    return atomic_write_text(run_dir / "report.html", render_html(data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__,
                                     formatter_class=HelpFormatter)  # fmt: skip
    parser.add_argument("run_dir", type=Path, help="run directory of a sweep (holds trials.parquet)")
    args = parser.parse_args(argv)
    path = write_report(args.run_dir)
    print(f"report: {path.resolve()}")
    return 0


if __name__ == "__main__":
    run_cli(main)
