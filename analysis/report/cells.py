"""Drawings of a genotype's three cells (plotly shapes, no Graphviz)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from search_spaces.genotype import CELL_TYPES
from search_spaces.genotype import Genotype

__all__ = ["cell_figure"]


def cell_figure(genotype: Genotype, title: str) -> go.Figure:
    """The three cells of a genotype as node-and-edge drawings (plotly shapes, no Graphviz)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{c} cell" for c in CELL_TYPES])
    for col, cell in enumerate(CELL_TYPES, start=1):
        edges, concat = genotype.cell(cell)
        nodes = len(edges) // 2
        pos: dict[int | str, tuple[float, float]] = {0: (0.0, 0.0), 1: (0.0, 2.0)}
        for node in range(nodes):
            pos[node + 2] = (1.0 + node, (node % 2) * 2.0 + 0.5)
        pos["out"] = (nodes + 1.5, 1.0)
        for k, (op, src) in enumerate(edges):
            dst = 2 + k // 2
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[y0, y1],
                    mode="lines",
                    line={"width": 1.5},
                    hoverinfo="text",
                    text=f"{op}: {src} -> {dst}",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
            fig.add_annotation(
                x=(x0 + x1) / 2,
                y=(y0 + y1) / 2,
                text=op,
                showarrow=False,
                font={"size": 9},
                bgcolor="rgba(255,255,255,0.8)",
                row=1,
                col=col,
            )
        for node in concat:
            (x0, y0), (x1, y1) = pos[node], pos["out"]
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[y0, y1],
                    mode="lines",
                    line={"dash": "dot", "color": "grey"},
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
        labels = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}
        xs, ys, texts = zip(*[(x, y, labels.get(n, str(n))) for n, (x, y) in pos.items()])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers+text",
                text=texts,
                textposition="middle center",
                marker={"size": 30, "color": "lightsteelblue", "line": {"width": 1}},
                hoverinfo="text",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=380)
    return fig
