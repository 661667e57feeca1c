"""The report page: one HTML file with plotly.js embedded once, and ``pareto.csv``."""

from __future__ import annotations

import html
import math
from pathlib import Path

import plotly.offline

from analysis.report import figures as F
from analysis.report import method_figures as MF
from analysis.report.cells import cell_figure
from analysis.report.data import ReportData
from analysis.report.data import build_report_data
from analysis.report.data import objective_label
from arnas_common import metrics as M
from arnas_common.io import atomic_write_text
from arnas_ray.results import TrialStatus

__all__ = ["render_html", "table_html", "write_report"]


def search_help_html(data: ReportData) -> str:
    """The verdict and the proxy-fidelity table."""
    help_ = data.search_help
    if help_ is None:
        return (
            "<p>No final scores yet: train and score the sweep's genotypes with random baselines "
            "(<code>python -m analysis.train --sweep RUN_DIR --random 6 --also 2 ...</code>, then "
            "<code>python -m analysis.score --sweep RUN_DIR</code>) to answer this section.</p>"
        )
    rows = []
    for r in help_.correlations.itertuples():

        def cell(value: float, low: float, high: float) -> str:
            return "n/a" if math.isnan(value) else f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"

        rows.append(
            f"<tr><td>{html.escape(r.proxy)} (search)</td><td>{html.escape(r.score)} (final)</td>"
            f"<td>{r.n}</td><td>{cell(r.kendall_tau, r.kendall_low, r.kendall_high)}</td>"
            f"<td>{cell(r.spearman_rho, r.spearman_low, r.spearman_high)}</td></tr>"
        )
    counts = help_.networks["group"].value_counts().to_dict()
    expected = {"pareto", "random"} - set(counts)
    missing = (
        f"<p>Not scored yet: {html.escape(', '.join(sorted(expected)))} networks (run "
        "<code>analysis.score --sweep RUN_DIR</code> to finish).</p>"
        if expected
        else ""
    )
    warned = "".join(f"<li>{html.escape(line)}</li>" for line in help_.warnings)
    if warned:
        warned = f"<p><b>Evaluation warnings</b>:</p><ul>{warned}</ul>"
    unreadable = "".join(f"<li>{html.escape(line)}</li>" for line in help_.unreadable)
    if unreadable:
        unreadable = f"<p>Left out (unreadable):</p><ul>{unreadable}</ul>"
    return (
        f"<p><b>{html.escape(help_.verdict)}</b></p>{missing}{warned}{unreadable}"
        f"<p>Networks: {html.escape(', '.join(f'{v} {k}' for k, v in counts.items()))}. Proxy "
        f"fidelity: "
        "rank correlation between each search-time proxy (supernet on the validation split) "
        "and each "
        "final score of the trained networks that came from search trials, with Fisher-z 95 % "
        "intervals.</p>"
        "<table><thead><tr><th>proxy</th><th>final score</th><th>n</th><th>Kendall τ [95 % "
        "CI]</th>"
        f"<th>Spearman ρ [95 % CI]</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _comparison_cell(comparison) -> str:
    if comparison.n_a == 0 or comparison.n_b == 0:
        return "n/a"
    if math.isnan(comparison.low):
        counts = f"{comparison.n_a} vs {comparison.n_b}"
        return f"{100 * comparison.difference:+.1f} (too few for an interval: {counts})"
    return (
        f"{100 * comparison.difference:+.1f} [{100 * comparison.low:+.1f}, "
        f"{100 * comparison.high:+.1f}], "
        f"p = {comparison.p_value:.3f} ({comparison.n_a} vs {comparison.n_b})"
    )


def claims_html(data: ReportData) -> str:
    """The paper's claims, tested: (a) published vs searched, (b) operations per cell type,
    (c) proxy fidelity, and MGDA's balance."""
    claims = data.claims
    if claims is None:
        return ""
    parts = []
    if claims.score_metric is None or claims.groups.empty:
        parts.append(
            "<p>(a) needs final scores: train and score the sweep (<code>analysis.train "
            "--sweep</code>, "
            "<code>analysis.score --sweep</code>).</p>"
        )
    else:
        metric = html.escape(claims.score_metric)
        rows = "".join(
            f"<tr><td>{html.escape(r.group)}</td><td>{r.n}</td><td>{F.fmt(r.mean)}</td>"
            f"<td>{'n/a' if math.isnan(r.low) else f'[{r.low:.3f}, {r.high:.3f}]'}</td>"
            f"<td>{F.fmt(r.sd)}</td></tr>"
            for r in claims.groups.itertuples()
        )
        diffs = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_comparison_cell(c))}</td></tr>"
            for k, c in claims.comparisons.items()
        )
        parts.append(
            f"<p><b>(a) Published vs searched genotypes</b> under the same final training, on "
            f"{metric} "
            "(mean over networks with Student's 95 % interval; ARNAS and DARTS_V2 are one "
            "genotype each, "
            "trained with several seeds: their sd is the seed spread).</p>"
            "<table><thead><tr><th>group</th><th>networks</th><th>mean</th><th>95 % "
            "CI</th><th>sd</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            "<p>Differences in points (Welch's 95 % interval, permutation p):</p>"
            f"<table><tbody>{diffs}</tbody></table>"
        )
    if claims.operation_tests:
        tests = "; ".join(
            f"{html.escape(source)}: total variation distance {t['distance']:.3f}, "
            f"permutation p = {t['p_value']:.3f} (n = {t['n']})"
            for source, t in claims.operation_tests.items()
        )
        parts.append(
            "<p><b>(b) Different structures near input and output.</b> Do the robust cells "
            "(near the "
            "output) use other operations than the accurate cells (near the input) of the same "
            "search? "
            f"Paired permutation test over searches (swapping each search's two cells): "
            f"{tests}.</p>"
        )
    else:
        parts.append("<p>(b) No finished search has both accurate and robust cells.</p>")
    parts.append(
        f"<p><b>(c) Proxy fidelity</b> rests on {claims.fidelity_networks} searched networks "
        f"with a "
        'final score (the table in "Does the search help?").</p>'
    )
    if not claims.normalizations.empty:
        rows = "".join(
            f"<tr><td>{html.escape(str(r.mgda_normalization))}</td><td>{r.trials}</td>"
            f"<td>{int(r.on_front)}</td><td>{F.fmt(r.gamma_mean)}</td><td>{F.fmt(r.gamma_min)}</td>"
            f"<td>{F.fmt(r.gamma_max)}</td></tr>"
            for r in claims.normalizations.itertuples()
        )
        parts.append(
            "<p><b>MGDA's balance</b>: gamma is the weight of the natural objective (1 = "
            "natural only, "
            "0 = adversarial only), per trial averaged over its architecture steps.</p>"
            "<table><thead><tr><th>mgda_normalization</th><th>trials</th><th>on the front</th>"
            "<th>gamma mean</th><th>min</th><th>max</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    if claims.notes:
        parts.append(
            "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in claims.notes) + "</ul>"
        )
    return "".join(parts)


_TABLE_SCRIPT = """
function sortTable(th){const table=th.closest('table');
const i=[...th.parentNode.children].indexOf(th);
const rows=[...table.tBodies[0].rows];const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
rows.sort((a,b)=>{const x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
const nx=parseFloat(x),ny=parseFloat(y);
const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
rows.forEach(r=>table.tBodies[0].appendChild(r));}
"""


def table_html(data: ReportData) -> str:
    columns = [
        "trial_id",
        "status",
        *dict.fromkeys([*data.objectives, M.CLEAN_ACC, M.PGD_ACC, M.PARAMS_M]),
        M.ALPHA_MAX_WEIGHT,
        *data.hyperparameters,
        "epochs_done",
        "time_total_s",
    ]
    columns = [c for c in columns if c in data.trials]
    head = "".join(
        f"<th onclick='sortTable(this)'>{html.escape(c)} &#x2195;</th>" for c in columns
    )
    body = []
    for _, row in data.trials.iterrows():
        mark = " class='front'" if str(row["trial_id"]) in data.front else ""
        cells = "".join(
            f"<td data-v='{html.escape(F.fmt(row[c]))}'>{html.escape(F.fmt(row[c]))}</td>"
            for c in columns
        )
        body.append(f"<tr{mark}>{cells}</tr>")
    return (
        f"<table id='trials'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<script>{_TABLE_SCRIPT}</script>"
    )


def _header_notes(data: ReportData) -> str:
    """The sweep's constraints and the hypervolume's reference point, stated once on top."""
    reference = ", ".join(
        f"{m} {r:.4g}" for m, r in zip(data.objectives, data.hypervolume_reference)
    )
    lines = [
        f"Hypervolume reference point: {reference}"
        + (
            " (declared by the sweep)"
            if data.reference_declared
            else " (from this sweep's trials)"
        )
    ]
    if data.constraints:
        limits = ", ".join(
            f"{m} {'<=' if side == 'max' else '>='} {value:g}"
            for m, limit in data.constraints.items()
            for side, value in limit.items()
        )
        infeasible = (
            int(data.trials["feasible"].eq(False).sum()) if "feasible" in data.trials else 0
        )
        lines.append(
            f"Constraints: {limits}; {infeasible} infeasible trials (grey, never on the front)"
        )
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def render_html(data: ReportData) -> str:
    """The whole report as one HTML string with plotly.js embedded."""
    figures = [
        ("Pareto front of the sweep", F.pareto_figure(data)),
        ("Pareto front in three objectives", F.pareto_3d_figure(data)),
        ("Hypervolume", F.hypervolume_figure(data)),
        ("Parallel coordinates", F.parallel_figure(data)),
        ("Learning curves", F.curves_figure(data)),
    ]
    if data.knee_genotype is not None:
        figures.append(
            (
                "Cells of the knee-point architecture",
                cell_figure(data.knee_genotype, f"Cells of trial {data.knee} (knee of the front)"),
            )
        )
    sections = []
    for title, fig in figures:
        if fig is None:
            continue
        sections.append(
            f"<h2>{html.escape(title)}</h2>"
            + fig.to_html(full_html=False, include_plotlyjs=False, config={"responsive": True})
        )
    counts = data.trials["status"].value_counts().to_dict()
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    objectives = ", ".join(f"{m} ({d})" for m, d in data.objectives.items())
    figure = MF.search_help_figure(data)
    help_figure = "" if figure is None else figure.to_html(full_html=False, include_plotlyjs=False)
    claim_figures = "".join(
        fig.to_html(full_html=False, include_plotlyjs=False)
        for fig in (MF.operations_figure(data), MF.gamma_figure(data))
        if fig is not None
    )
    attack = ""
    if M.PGD_ACC in data.objectives:
        label = objective_label(
            data.trials[data.trials["status"] == TrialStatus.FINISHED], M.PGD_ACC
        )
        attack = "; " + label.split("(", 1)[1].rstrip(")").replace("supernet, ", "pgd_acc: ")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>arnas-ray report: {html.escape(data.name)}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px}} th{{cursor:pointer;background:#eef}}
tr.front{{background:#ffe}}</style>
</head><body>
<h1>arnas-ray sweep report: {html.escape(data.name)}</h1>{_header_notes(data)}
<p>{len(data.trials)} trials ({html.escape(summary)}); {len(data.front)} on the Pareto front of
finished searches; knee point: trial {html.escape(str(data.knee))}. Objectives:
{html.escape(objectives)} of the search result
(accuracies of the supernet on the validation split{html.escape(attack)}); final scores come from
<code>analysis.score</code> on the test split.</p>
{"".join(sections)}
<h2>Does the search help?</h2>{search_help_html(data)}{help_figure}
<h2>The paper's claims, tested</h2>{claims_html(data)}{claim_figures}
<h2>Trials</h2>{table_html(data)}
</body></html>
"""


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` and ``pareto.csv`` into ``run_dir``."""
    run_dir = Path(run_dir)
    data = build_report_data(run_dir)
    front = data.trials[data.trials["trial_id"].astype(str).isin(data.front)]
    atomic_write_text(
        run_dir / "pareto.csv", front.drop(columns=["path"], errors="ignore").to_csv(index=False)
    )
    return atomic_write_text(run_dir / "report.html", render_html(data))
