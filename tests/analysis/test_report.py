"""The report's data (asserted directly) and the page as a browser shows it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import build_report_data
from analysis.report import render_html
from analysis.report import write_report

FIXTURE = Path(__file__).parents[1] / "assets" / "sweep_run"
CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


def test_report_data_front_knee_and_exclusions(run_dir) -> None:
    data = build_report_data(run_dir)
    assert data.name == "fixture-sweep"
    assert sorted(data.front) == [
        "t0001",
        "t0002",
        "t0003",
        "t0007",
    ]  # ERROR / STOPPED_EARLY excluded
    assert data.knee in data.front
    assert len(data.hypervolume) == 6 and data.hypervolume == sorted(data.hypervolume)
    assert set(data.search_help.networks["name"]) == {"ARNAS", "DARTS_V2", "trial_t0001"}
    assert data.knee_genotype is not None
    assert set(data.hyperparameters) == {
        "regularization_coefficient",
        "arch_mode",
        "natural_weight",
        "robust_width",
    }


def test_report_file_is_self_contained(run_dir) -> None:
    path = write_report(run_dir)
    text = path.read_text()
    assert (
        text.count("plotly-graph-div") >= 6
    )  # front, scores, hypervolume, parcoords, curves, cells
    bundle_end = text.index("</script>")  # plotly.js is embedded in the first script
    assert "plotly" in text[:bundle_end] and len(text[:bundle_end]) > 1_000_000
    assert 'src="http' not in text[bundle_end:] and "<link" not in text[bundle_end:]
    front = pd.read_csv(run_dir / "pareto.csv")
    assert sorted(front["trial_id"]) == ["t0001", "t0002", "t0003", "t0007"]


def test_pareto_figure_explains_its_markers(run_dir) -> None:
    from analysis.report.figures import pareto_figure

    names = [trace.name for trace in pareto_figure(build_report_data(run_dir)).data]
    assert {"robust_width 0.5", "robust_width 1", "robust_width 2"} <= set(names)
    assert {"arch_mode=mgda", "arch_mode=weighted", "Pareto front", "knee point"} <= set(names)


def test_report_cli_on_missing_run_is_one_line(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(tmp_path)], capture_output=True, text=True
    )
    assert (
        done.returncode == 2 and "no result.json" in done.stderr and "Traceback" not in done.stderr
    )


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)",
)
def test_report_renders_offline_in_headless_chromium(run_dir, tmp_path) -> None:
    path = write_report(run_dir)
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=8000",
        "--window-size=1200,3000",
    ]
    dom = subprocess.run(
        [
            *flags,
            f"--user-data-dir={tmp_path / 'u1'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    errors = [
        line for line in console if "Uncaught" in line or "Error" in line and "WebGL" not in line
    ]
    assert errors == [], errors
    assert dom.stdout.count('class="main-svg"') >= 10  # plotly drew its SVG layers for every plot
    assert "trials" in dom.stdout and "t0007" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            *flags,
            f"--user-data-dir={tmp_path / 'u2'}",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000


def test_render_html_handles_an_empty_sweep(run_dir) -> None:
    data = build_report_data(run_dir)
    data.trials = data.trials.iloc[0:0]
    data.front, data.knee, data.hypervolume, data.knee_genotype = [], None, [], None
    page = render_html(data)
    assert "<p>0 trials ()" in page and "0 on the Pareto front" in page


def test_partial_and_damaged_final_results_still_report(tmp_path) -> None:
    """An interrupted analysis.score --sweep scores the published networks first; the report
    draws what there is and names every file it had to leave out."""
    import json

    from analysis.report.page import search_help_html
    from tests.helpers import write_sweep_run

    rows = [
        {"trial_id": "a", "clean_acc": 0.9, "pgd_acc": 0.5},
        {"trial_id": "b", "clean_acc": 0.8, "pgd_acc": 0.6},
    ]
    run = write_sweep_run(tmp_path / "run", {"clean_acc": "maximize", "pgd_acc": "maximize"}, rows)
    (run / "scores").mkdir()
    for name, robust in (("ARNAS", 0.41), ("DARTS_V2", 0.43)):
        record = {
            "name": name,
            "n_examples": 100,
            "eps": 0.1,
            "attacks": {"clean_acc": 0.8, "pgd20_acc": robust},
        }
        (run / "scores" / f"{name}.json").write_text(json.dumps(record))
    (run / "scores" / "trial_a.json").write_text('{"name": "trial_a", "attacks": ')  # cut short
    (run / "scores" / "trial_b.json").write_text(
        '{"name": "trial_b", "attacks": {"pgd20_acc": "high"}}'
    )
    (run / "final").mkdir()
    (run / "final" / "jobs.json").write_text('{"schema": 1, "jobs": [{"name": "../../x"}]}')
    data = build_report_data(run)
    assert set(data.search_help.networks["name"]) == {"ARNAS", "DARTS_V2"}
    assert data.search_help.verdict.startswith("Too few networks to decide")
    left_out = "\n".join(data.search_help.unreadable)
    assert "trial_a.json" in left_out and "not valid JSON" in left_out
    assert "trial_b.json" in left_out and "not a number" in left_out
    assert "jobs.json" in left_out and "not a safe name" in left_out
    text = search_help_html(data)
    assert "Not scored yet: pareto, random" in text and "Left out (unreadable)" in text
    published = data.claims.groups.set_index("group")
    assert published.loc["ARNAS", "n"] == 1 and published.loc["ARNAS", "mean"] == pytest.approx(
        0.41
    )
    write_report(run)  # and the page renders
