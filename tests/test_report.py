"""The report generator on tiny fake result sets: 2 analytic targets × 2 labels × 2 seeds, and
the data targets (logistic regression, diffusion, BNN) with Gaussian stand-in posteriors."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from sivi_engine import artifacts
from sivi_engine.metrics import (
    EvaluationContext,
    EvaluationSettings,
    correlation_comparison,
    evaluate_groups,
    reliability_curves,
)
from sivi_engine.metrics.predictive import expected_calibration_error, reliability_curve
from sivi_engine.report import build_report, curves, reproduction, summaries, tables, views
from sivi_engine.report import figures as fig
from sivi_engine.report import runs as rn
from sivi_engine.report.document import BUDGET_NOTE, NO_CURVES, NO_REPRODUCTION, NO_SUSPECT
from sivi_engine.report.figures import (
    Series,
    Trace,
    correlation_figure,
    loss_figure,
    reliability_figure,
)
from sivi_engine.report.render import Paragraph, TableBlock, to_html, to_markdown
from sivi_engine.report.tables import Table, format_number, seed_cell
from sivi_engine.settings import SettingsError
from sivi_engine.steps.describe import describe
from sivi_engine.steps.evaluate import evaluate
from sivi_engine.targets import make_target

TARGETS = ("banana", "gmm1d")
LABELS = ("svgd", "ksivi_u")  # not alphabetical: the report keeps config order
SEEDS = (0, 1, 2)
VERSIONS = artifacts.json_attr({"numpy": np.__version__, "torch": torch.__version__})
DIVERGED = ("gmm1d", "svgd", 1)  # keeps its (fake) metric values: they must not be averaged
SUSPECT = ("banana", "ksivi_u", 2)
SUSPECT_REASONS = ["kl_qp_knn above the gate", "coverage_95 far from 0.95"]
# the evaluation flags a diverged run suspect too, with the divergence as its reason
DIVERGED_REASONS = ["training status: diverged"]
REPRODUCTION = [
    {
        "experiment": "banana KL",
        "target": "banana",
        "method": "ksivi_u",
        "metric": "kl_qp_knn",
        "paper": 0.2,
        "paper_sd": 0.01,
        "source": "paper Table 1",
    },
    {
        "experiment": "gmm1d KL",
        "target": "gmm1d",
        "method": "svgd",
        "metric": "kl_qp_knn",
        "paper": 0.5,
        "source": "paper Fig. 2",
        "note": "read off a plot",
    },
    {
        "experiment": "banana KL against the official code",
        "target": "banana",
        "method": "ksivi_u",
        "metric": "kl_qp_knn",
        "source": "official code",
        "note": "plot only",
        "anchor_repo": "longinYu/KSIVI",
        "anchor_config": "banana.yml",
    },
    {
        "experiment": "not in this report",
        "target": "gmm1d",
        "method": "uivi",
        "metric": "kl_qp_knn",
        "paper": 1,
        "source": "paper Table 3",
    },
]
#: The anchors file the report reads: three official runs of banana.yml, kl_qp_knn 0.19, 0.20,
#: 0.21 (sd 0.01) against the project's 0.205 ± 0.00707 (n = 2): s_pooled = 0.00913, so
#: |0.205 − 0.20| = 0.005 ≤ 0.018 matches; a run of another config must not enter.
ANCHORS_CSV = "repo,commit,script,config,target,seed,wall_seconds,threads,metric,value\n" + "".join(
    f"longinYu/KSIVI,4d99574aaaa,sivistein_2d.py,{config},banana,{seed},500,1,kl_qp_knn,{value}\n"
    for config, seed, value in [
        ("banana.yml", 0, 0.19),
        ("banana.yml", 1, 0.20),
        ("banana.yml", 2, 0.21),
        ("multimodal.yml", 0, 9.0),
    ]
)
#: A pair the config snapshot lists as left out of the grid (common.smk's ``not_run``).
NOT_RUN = {"target": "diffusion", "label": "livi", "reason": "its d × d Jacobian is too costly"}
CONFIG = (
    "targets: [banana, gmm1d]\nmethods:\n  ksivi_u: {method: ksivi, estimator: ustat}\n  svgd: {}\n"
    + yaml.safe_dump({"reproduction": REPRODUCTION}, sort_keys=False)
    + yaml.safe_dump({"not_run": [NOT_RUN]}, sort_keys=False)
)


def fake_metrics(target: str, label_index: int, seed: int) -> dict[str, float]:
    """Distinct, known values per run; 2-D-only metrics only for the 2-D target."""
    metrics = {
        "kl_qp_knn": 0.1 * (label_index + 1) + 0.01 * seed,
        "mmd2": 1e-4 * (1 + seed),
        "coverage_95": 0.9 + 0.02 * seed,
        "wall_seconds": 10.0 + seed,
    }
    if target == "banana":
        metrics |= {"kl_qp_grid": 0.05 * (seed + 1), "corr_max_abs_diff": 0.01}
    return metrics


COMMON = {"versions": VERSIONS, "created": "2026-01-01T00:00:00+00:00", "target_settings": "{}"}


def run_status(n_draws: int, diverged: bool = False, suspect: bool = False) -> dict[str, float]:
    """The run-status variables of a per-run MetricSet (reference scores NaN: not applicable,
    unless the run's metrics hold them)."""
    reference = {f"reference_{m}": float("nan") for m in tables.PREDICTIVE_METRICS}
    return {
        "suspect": float(suspect),
        "diverged": float(diverged),
        "scored_draws": float(n_draws),
        **reference,
    }


def write_reference(
    root: Path, target_name: str, names: list[str], draws: np.ndarray, engine: str = "exact"
) -> Path:
    """A ReferenceDraws store of ``draws`` (chain, draw, param) below ``root``/reference, and
    the target's real TargetDescription below ``root``/targets."""
    describe(target_name, root / "targets" / f"{target_name}.zarr", {})
    path = root / "reference" / f"{target_name}.zarr"
    artifacts.write(
        artifacts.reference_draws(
            draws,
            names,
            target=target_name,
            target_hash="h",
            engine=engine,
            engine_settings="{}",
            seed=0,
            diagnostics="{}",
            wall_seconds=0.5,
            **COMMON,
        ),
        path,
        artifacts.REFERENCE_DRAWS,
    )
    return path


def run_dir(root: Path, target_name: str, label: str, seed: int) -> Path:
    return root / "runs" / target_name / label / f"seed{seed}"


def write_sample_set(
    root: Path,
    target_name: str,
    names: list[str],
    label: str,
    seed: int,
    samples: np.ndarray,
    loss: np.ndarray,
    status: str = "ok",
    settings: str = "{}",
) -> Path:
    """The SampleSet store of one run below ``root``/runs; its checkpoint draws are a stand-in
    (the report reads the MetricSet's curves, never the checkpoint draws)."""
    step = np.arange(0, 5 * len(loss), 5)
    return artifacts.write(
        artifacts.sample_set(
            samples,
            names,
            step,
            loss,
            step * 0.01,
            checkpoint_samples=samples[None, :10],
            checkpoint_iteration=np.array([500]),
            checkpoint_seconds=np.array([10.0 + seed]),
            method=label.split("_")[0],
            label=label,
            target=target_name,
            seed=seed,
            settings=settings,
            code_hash="c",
            device="cpu",
            wall_seconds=10.0 + seed,
            iterations=500,
            status=status,
            diagnostics="{}",
            stopped_on_budget=0,
            checkpoint_overhead_seconds=0.0,
            **COMMON,
        ),
        run_dir(root, target_name, label, seed) / "samples.zarr",
        artifacts.SAMPLE_SET,
    )


def write_run(
    root: Path,
    target_name: str,
    names: list[str],
    label: str,
    seed: int,
    samples: np.ndarray,
    metrics: dict[str, float],
    loss: np.ndarray,
    status: str = "ok",
    suspect_reasons: tuple[str, ...] = (),
    curves: dict[str, np.ndarray] | None = None,
    settings: str = "{}",
    reliability: dict[str, np.ndarray] | None = None,
) -> Path:
    """SampleSet and MetricSet stores of one run, the MetricSet with its run-status variables
    (suspect when ``suspect_reasons`` are given), ``curves`` (name → one value per checkpoint)
    and ``reliability`` (name → one value per calibration bin); returns the MetricSet path.
    The MetricSet names no other store: the report must find them among the stores it is
    given."""
    write_sample_set(root, target_name, names, label, seed, samples, loss, status, settings)
    status_variables = run_status(len(samples), status != "ok", bool(suspect_reasons))
    metric_set = artifacts.metric_set(
        status_variables | metrics,  # the metrics hold no flag; their reference_* scores win
        target_name,
        label,
        seed,
        curves=curves,
        reliability=reliability,
        method=label.split("_")[0],
        suspect_reasons=json.dumps(list(suspect_reasons)),
        **COMMON,
    )
    path = run_dir(root, target_name, label, seed) / "metrics.zarr"
    return artifacts.write(metric_set, path, artifacts.METRIC_SET)


def stores_below(root: Path, metrics: Sequence[Path]) -> rn.ReportStores:
    """The report's stores: the MetricSets ``metrics`` (in this order: the report keeps the
    runs' order) and every SampleSet, ReferenceDraws and TargetDescription below ``root``."""
    return rn.ReportStores(
        metrics=list(metrics),
        samples=sorted(root.glob("runs/*/*/*/samples.zarr")),
        references=sorted(root.glob("reference/*.zarr")),
        descriptions=sorted(root.glob("targets/*.zarr")),
    )


def report_target_data(stores: rn.ReportStores) -> dict[str, views.TargetData]:
    """The report's per-target inputs, read from ``stores`` as :func:`build_report` reads them."""
    from sivi_engine.report.build import combine

    sample_sets = rn.sample_set_index(stores.samples)
    references = rn.target_index(stores.references, artifacts.REFERENCE_DRAWS)
    descriptions = rn.target_index(stores.descriptions, artifacts.TARGET_DESCRIPTION)
    loaded = [rn.read_run(p, sample_sets, references) for p in stores.metrics]
    run_list = [run for _, run in loaded]
    summary = rn.summarise_runs(run_list)
    combined = combine([ds for ds, _ in loaded], summary, "now", {})
    return views.target_data(run_list, summary, combined, descriptions)


def write_results(root: Path) -> list[Path]:
    """Reference, TargetDescription, SampleSet and MetricSet stores for every run; returns the
    MetricSet paths."""
    paths = []
    for target_name in TARGETS:
        target = make_target(target_name)
        gen = torch.Generator().manual_seed(0)
        draws = target.sample(2000, gen).numpy().reshape(2, 1000, target.dim)
        write_reference(root, target_name, target.param_names(), draws)
        for i, label in enumerate(LABELS):
            for seed in SEEDS:
                samples = target.sample(3000, gen).numpy() * (1.0 + 0.2 * i)
                step = np.arange(0, 500, 5)
                loss = (np.exp(-step / 100.0) - 0.05 * i) * (
                    1 + 0.1 * seed
                )  # label 1 goes negative
                status = "diverged" if (target_name, label, seed) == DIVERGED else "ok"
                reasons = {SUSPECT: SUSPECT_REASONS, DIVERGED: DIVERGED_REASONS}.get(
                    (target_name, label, seed), ()
                )
                paths.append(
                    write_run(
                        root,
                        target_name,
                        target.param_names(),
                        label,
                        seed,
                        samples,
                        fake_metrics(target_name, i, seed),
                        loss,
                        status,
                        tuple(reasons),
                    )
                )
    return paths


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    config = root / "config.yaml"
    config.write_text(CONFIG)
    anchors = root / "anchors.csv"
    anchors.write_text(ANCHORS_CSV)
    build_report(
        stores_below(root, write_results(root)),
        root / "report",
        table_path=root / "metrics.zarr",
        config_path=config,
        anchor_paths=[anchors],
        total_wall_seconds=123.0,
    )
    return root


def expected_cell(target: str, label_index: int, metric: str) -> str:
    """Mean ± sd over the seeds that are neither DIVERGED nor SUSPECT, and their count."""
    excluded = {DIVERGED: "diverged", SUSPECT: "suspect"}
    kept = [s for s in SEEDS if (target, LABELS[label_index], s) not in excluded]
    values = np.array([fake_metrics(target, label_index, s)[metric] for s in kept])
    notes = [
        f"1 {why}" for run, why in excluded.items() if run[:2] == (target, LABELS[label_index])
    ]
    counts = "; ".join([f"n={len(kept)}", *notes])
    return f"{format_number(values.mean())} ± {format_number(values.std(ddof=1))} ({counts})"


def test_format_number() -> None:
    assert format_number(0.123456) == "0.123"
    assert format_number(12345.6) == "12300"
    assert format_number(1.5e-5) == "1.50e-05"
    assert format_number(9.9999) == "10.0"
    assert format_number(float("nan")) == "—"


@pytest.mark.parametrize(
    ("values", "condition", "cell"),
    [
        ([0.010, 0.012, 0.014], ["ok"] * 3, "0.0120 ± 0.00200 (n=3)"),
        ([1.0, 2.0, np.nan], ["ok"] * 3, "1.50 ± 0.707 (n=2)"),  # a missing value is not counted
        ([1.0, 2.0, 100.0], ["ok", "ok", "suspect"], "1.50 ± 0.707 (n=2; 1 suspect)"),
        ([1.0, 7.0, 2.0], ["ok", "diverged", "ok"], "1.50 ± 0.707 (n=2; 1 diverged)"),
        (
            [1.0, np.nan, 5.0, 7.0],
            ["ok", "ok", "diverged", "suspect"],
            "1.00 (n=1; 1 diverged; 1 suspect)",
        ),
        ([np.nan] * 3, ["diverged"] * 3, "— (n=0; 3 diverged)"),
        ([np.nan] * 2, ["absent"] * 2, "—"),
    ],
)
def test_seed_cell_counts_and_excludes(values, condition, cell) -> None:
    assert seed_cell(np.array(values), np.array(condition)) == cell


def test_run_condition_diverged_before_suspect_and_missing_flags_read_as_zero() -> None:
    runs = [
        ({"m": 1.0, "diverged": 1.0, "suspect": 1.0}, 0),
        ({"m": 2.0, "suspect": 1.0}, 1),
        ({"m": 3.0, "diverged": 0.0, "suspect": 0.0}, 2),
        ({"m": 4.0}, 3),
    ]
    combined = artifacts.combine_metric_sets(
        [artifacts.metric_set(m, "t", "a", s) for m, s in runs]
    )
    combined = combined.reindex(seed=[0, 1, 2, 3, 4])  # seed 4: no run
    run = {"target": "t", "method": "a"}  # a dict: ``sel`` reserves the keyword ``method``
    condition = tables.run_condition(combined.sel(run))
    assert list(condition.values) == ["diverged", "suspect", "ok", "ok", "absent"]
    older = combined.drop_vars(["diverged", "suspect"])  # MetricSets from before the gate
    assert list(tables.run_condition(older.sel(run)).values) == ["ok"] * 4 + ["absent"]


def test_combined_store_and_csv(report: Path) -> None:
    combined = artifacts.read(report / "metrics.zarr", artifacts.METRIC_SET)
    assert dict(combined.sizes) == {"target": 2, "method": 2, "seed": 3}
    assert list(combined["target"].values) == list(TARGETS)
    assert list(combined["method"].values) == list(LABELS)
    run = {"target": "banana", "method": "svgd", "seed": 1}
    expected = fake_metrics("banana", LABELS.index("svgd"), 1)["kl_qp_knn"]
    assert combined["kl_qp_knn"].sel(run).item() == pytest.approx(expected)
    assert np.isnan(combined["kl_qp_grid"].sel(target="gmm1d")).all()

    csv = pd.read_csv(report / "metrics.csv")
    assert list(csv.columns[:5]) == ["target", "method", "seed", "suspect", "diverged"]
    assert len(csv) == len(TARGETS) * len(LABELS) * len(SEEDS)
    row = csv[(csv.target == "banana") & (csv.method == "ksivi_u") & (csv.seed == 1)].iloc[0]
    assert row["kl_qp_grid"] == pytest.approx(0.1)
    assert row["wall_seconds"] == pytest.approx(11.0)
    assert row["scored_draws"] == 3000
    assert csv.loc[csv.target == "gmm1d", "corr_max_abs_diff"].isna().all()
    # nothing hidden: the suspect and the diverged run keep their raw values and carry their flag
    flagged = csv.set_index(["target", "method", "seed"])
    assert flagged.loc[SUSPECT, "kl_qp_knn"] == pytest.approx(0.22)
    assert flagged.loc[DIVERGED, "kl_qp_knn"] == pytest.approx(0.11)
    assert (csv.suspect == 1).sum() == 2 and flagged.loc[SUSPECT, "suspect"] == 1
    assert (csv.diverged == 1).sum() == 1 and flagged.loc[DIVERGED, "diverged"] == 1


def test_summary_markdown(report: Path) -> None:
    md = (report / "report" / "summary.md").read_text()
    assert "runs: 12 (11 ok, 1 diverged)" in md
    assert f"- diverged: gmm1d / svgd / seed 1: {DIVERGED_REASONS[0]}\n" in md
    assert "suspect: 1 of the ok runs" in md
    assert "total wall time (first training job to this report): 2 min 3 s" in md
    assert "training wall time, summed over runs: 2 min 12 s" in md  # 4 × (10 + 11 + 12) s
    assert CONFIG.rstrip() in md
    for target in TARGETS:
        section = md.split(f"### {target}\n")[1].split("###")[0].lstrip()
        # the full table is folded: <details><summary>…</summary>, a blank line, the table
        assert section.startswith(f"<details><summary>{target}: every metric (")
        header = section.splitlines()[2]
        assert header.startswith("| method | kl_qp_knn ↓")
        assert ("kl_qp_grid" in header) == (target == "banana")
        for name in (
            "suspect",
            "diverged",
            "scored_draws",
            "reference_",
        ):  # run status, not metrics
            assert name not in header
        for i, label in enumerate(LABELS):
            row = next(line for line in section.splitlines() if line.startswith(f"| {label} |"))
            assert expected_cell(target, i, "kl_qp_knn") in row
        assert f"![{target}: training loss" in section
        assert f"(figures/{target}_density.png)" in section
    assert "| coverage_95 | fraction of reference draws" in md
    legend = md.split("## Metric legend")[1].split("## Versions")[0]
    assert "scored_draws" not in legend and "suspect" not in legend


def test_cells_leave_out_suspect_and_diverged_runs(report: Path) -> None:
    """Seeds 0, 1, 2 of kl_qp_knn: 0.20, 0.21, 0.22 (suspect) for banana / ksivi_u and 0.10,
    0.11 (diverged), 0.12 for gmm1d / svgd: the means are 0.205 and 0.110, not 0.21 and 0.11."""
    md = (report / "report" / "summary.md").read_text()
    banana = table_rows(section(md, "banana"), "| method |")
    gmm1d = table_rows(section(md, "gmm1d"), "| method |")
    assert banana["ksivi_u"][0] == "0.205 ± 0.00707 (n=2; 1 suspect)"
    assert gmm1d["svgd"][0] == "0.110 ± 0.0141 (n=2; 1 diverged)"
    assert banana["svgd"][0] == "0.110 ± 0.0100 (n=3)"


def test_suspect_runs_are_listed_with_reasons(report: Path) -> None:
    md = (report / "report" / "summary.md").read_text()
    listing = md.split("## Suspect runs\n")[1].split("\n## ")[0]
    items = [line for line in listing.splitlines() if line.startswith("- ")]
    assert items == [f"- banana / ksivi_u / seed 2: {'; '.join(SUSPECT_REASONS)}"]
    assert "<h2>Suspect runs</h2>" in (report / "report" / "index.html").read_text()


def test_reproduction_md_rows(report: Path) -> None:
    """banana / ksivi_u: |0.2 − 0.205| = 0.005 ≤ 2 · 0.00707; gmm1d / svgd: |0.5 − 0.110| = 0.39 >
    2 · 0.0141; gmm1d / uivi has no run."""
    text = (report / "report" / "reproduction.md").read_text()
    assert "|paper − mean| ≤ 2·sd_seeds" in text
    rows = table_rows(text, "| experiment |")
    assert rows["banana KL"] == [
        "banana",
        "ksivi_u",
        "kl_qp_knn",
        "0.2 ± 0.01",
        "—",
        "0.205 ± 0.00707 (n=2; 1 suspect)",
        "within seed spread",
        "paper Table 1",
        "",
    ]
    assert rows["gmm1d KL"] == [
        "gmm1d",
        "svgd",
        "kl_qp_knn",
        "0.5",
        "—",
        "0.110 ± 0.0141 (n=2; 1 diverged)",
        "outside",
        "paper Fig. 2",
        "read off a plot",
    ]
    assert rows["banana KL against the official code"][3:7] == [
        "—",
        "0.200 ± 0.0100 (n=3) @4d99574",
        "0.205 ± 0.00707 (n=2; 1 suspect)",
        "matches",
    ]
    assert rows["not in this report"][5:7] == ["—", "not run"]
    summary = (report / "report" / "summary.md").read_text()
    assert text.strip() in summary.split("## Reproduction\n")[1]
    assert "<h2>Reproduction</h2>" in (report / "report" / "index.html").read_text()


def test_index_html(report: Path) -> None:
    page = (report / "report" / "index.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2 * len(TARGETS)  # density + loss per target
    # per target its headline and its full table; reproduction, legend, versions
    assert page.count("<table") == 2 * len(TARGETS) + 3
    assert f"<td>{expected_cell('banana', 1, 'kl_qp_knn')}</td>" in page
    assert f"<td>{expected_cell('gmm1d', 0, 'coverage_95')}</td>" in page
    assert "{method: ksivi, estimator: ustat}" in page
    assert not list((report / "report").glob(".*tmp"))


def test_figures_are_png(report: Path) -> None:
    figures = sorted(p.name for p in (report / "report" / "figures").iterdir())
    assert figures == sorted(f"{t}_{kind}.png" for t in TARGETS for kind in ("density", "loss"))
    for path in (report / "report" / "figures").iterdir():
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, path.name


def test_html_escapes_text() -> None:
    page = to_html([Paragraph("<b> & 'x'"), TableBlock(Table(("a|b",), (("<td>",),)))], "t<")
    assert "&lt;b&gt; &amp; &#x27;x&#x27;" in page and "<td>&lt;td&gt;</td>" in page
    assert "<title>t&lt;</title>" in page
    assert r"| a\|b |" in to_markdown([TableBlock(Table(("a|b",), ()))])


@pytest.mark.parametrize(("offset", "scale"), [(0.0, "log"), (0.5, "symlog")])
def test_loss_axis_is_log_when_positive_else_symlog(offset: float, scale: str) -> None:
    step = np.arange(100)
    trace = Trace("a", step, np.exp(-step / 20.0) - offset)
    assert loss_figure([trace], {"a": "black"}).axes[0].get_yscale() == scale


def test_cost_tables_sum_benchmark_files(tmp_path: Path) -> None:
    from sivi_engine.report import costs

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    jobs = {
        "train/banana/k/seed0": (10.0, 300.0),
        "train/banana/k/seed1": (14.0, 320.0),
        "train/banana/s/seed0": (5.0, 200.0),
        "evaluate/banana/k/seed0": (2.0, 150.0),
    }
    paths = []
    for job, (seconds, rss) in jobs.items():
        path = tmp_path / f"{job}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:10\t{rss}\t1\t1\t1\t0\t0\t50\t1\n")
        paths.append(path)
    frame = costs.read_benchmarks(paths, tmp_path)
    by_rule = {row[0]: row for row in costs.cost_by_rule(frame).rows}
    assert by_rule["train"][1:] == ("3", "29.0", "9.67", "14.0", "320")
    by_method = {row[0]: row for row in costs.cost_by_method(frame).rows}
    assert by_method["k"][1:3] == ("2", "24.0") and by_method["s"][1:3] == ("1", "5.00")
    # training loops of 20 s in all: train jobs 29 s, so 9 s beyond the loops, evaluate 2 s
    split = {row[0]: row[1:] for row in costs.cost_split(frame, 20.0).rows}
    assert split["training loops"] == ("20.0", "100 %")
    assert split["train jobs beyond the loop"] == ("9.00", "45 %")
    assert split["evaluate jobs"] == ("2.00", "10 %")
    assert split["per-run overhead (train beyond the loop + evaluate)"] == ("11.0", "55 %")


# --- data targets: predictive table, correlation scatter, reliability diagram, diffusion paths ---

DATA_TARGETS = ("blr_waveform", "diffusion", "bnn_diabetes")
DATA_DIVERGED = ("blr_waveform", "svgd", 0)  # a first-seed run: its panels carry the status
N_DRAWS = 1000


def laplace_posterior(target) -> tuple[np.ndarray, np.ndarray]:
    """Mode and Cholesky factor of the covariance of the Laplace approximation of a logistic
    regression posterior (Newton's method on log p; H = Xᵀ diag(σ(1 − σ)) X + I/100)."""
    x, y = target.X_train.numpy(), target.y_train.numpy()
    beta = np.zeros(target.dim)
    for _ in range(25):
        p = 1 / (1 + np.exp(-x @ beta))
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + np.eye(target.dim) / 100
        beta += np.linalg.solve(hessian, x.T @ (y - p) - beta / 100)
    return beta, np.linalg.cholesky(np.linalg.inv(hessian))


def data_posterior(target) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian stand-in posterior (mean, Cholesky factor) for each data target."""
    if target.name == "blr_waveform":
        return laplace_posterior(target)
    if target.name == "diffusion":  # independent N(true path, s_k²) per state
        return target.true_path(), np.diag(0.1 + 0.05 * np.sin(target.times() * 6))
    return 0.1 * np.random.default_rng(1).normal(size=target.dim), 0.05 * np.eye(target.dim)


def fake_data_metrics(target: str, label_index: int, seed: int) -> dict[str, float]:
    """Known non-predictive metric values per run (NaN for the diverged run)."""
    metrics = {"kl_qp_knn": 0.5 + 0.1 * label_index + 0.01 * seed, "wall_seconds": 10.0 + seed}
    if (target, LABELS[label_index], seed) == DATA_DIVERGED:
        metrics = {name: float("nan") for name in metrics}
    return metrics


def predictive_evaluation(
    samples: np.ndarray, reference: np.ndarray, target, settings: EvaluationSettings
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The predictive metrics (q's and ``reference_*``) and the reliability curves of a run,
    computed by the evaluation's own code (none for a target without held-out data)."""
    ctx = EvaluationContext(samples, reference, target, settings)
    return evaluate_groups(ctx, ["predictive"]), reliability_curves(ctx)


def method_samples(
    mean: np.ndarray, tril: np.ndarray, label_index: int, rng: np.random.Generator
) -> np.ndarray:
    """Label 0: the stand-in posterior widened by 20 %; label 1: with independent noise added,
    which shrinks the pairwise correlations (slope < 1)."""
    z = rng.standard_normal((N_DRAWS, len(mean)))
    samples = mean + 1.2 * z @ tril.T
    if label_index == 1:
        samples = samples + np.sqrt(np.diag(tril @ tril.T)) * rng.standard_normal(samples.shape)
    return samples


def write_data_results(root: Path) -> list[Path]:
    """Stores of every data-target run, the predictive metrics and reliability curves scored as
    the evaluation scores them (none for the diverged run, as the evaluation skips it)."""
    rng = np.random.default_rng(0)
    paths = []
    for target_name in DATA_TARGETS:
        target = make_target(target_name)
        names = target.param_names()
        mean, tril = data_posterior(target)
        draws = mean + rng.standard_normal((N_DRAWS, len(mean))) @ tril.T
        write_reference(root, target_name, names, draws.reshape(2, N_DRAWS // 2, -1), "stan")
        for i, label in enumerate(LABELS):
            for seed in SEEDS:
                samples = method_samples(mean, tril, i, rng)
                status, metrics = "ok", fake_data_metrics(target_name, i, seed)
                predictive, reliability = {}, {}
                if (target_name, label, seed) == DATA_DIVERGED:
                    samples[-100:] = np.nan
                    status = "diverged"
                else:
                    predictive, reliability = predictive_evaluation(
                        samples, draws, target, EvaluationSettings()
                    )
                loss = np.exp(-np.arange(50) / 10.0) + 0.1 * i
                paths.append(
                    write_run(
                        root,
                        target_name,
                        names,
                        label,
                        seed,
                        samples,
                        metrics | predictive,
                        loss,
                        status,
                        reliability=reliability,
                    )
                )
    return paths


@pytest.fixture(scope="module")
def data_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rn.ReportStores]:
    root = tmp_path_factory.mktemp("data_results")
    stores = stores_below(root, write_data_results(root))
    build_report(stores, root / "report", total_wall_seconds=1.0)
    return root, stores


@pytest.fixture(scope="module")
def data_views(data_report: tuple[Path, rn.ReportStores]) -> dict[str, views.TargetData]:
    """The report's per-target inputs, rebuilt from its stores as build_report reads them."""
    return report_target_data(data_report[1])


def stored_run(root: Path, target: str, label: str, seed: int) -> xr.Dataset:
    """The per-run MetricSet of (target, label, seed) below ``root``, one value per variable
    (dims target, method, seed squeezed out)."""
    path = run_dir(root, target, label, seed) / "metrics.zarr"
    return artifacts.read(path, artifacts.METRIC_SET).squeeze(["target", "method", "seed"])


def section(md: str, target: str) -> str:
    return md.split(f"### {target}\n")[1].split("\n## ")[0].split("\n### ")[0]


def table_rows(text: str, header_start: str) -> dict[str, list[str]]:
    """First cell → other cells of the Markdown table whose header starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def expected_data_cell(root: Path, target: str, label_index: int, metric: str) -> str:
    """The seed cell of the runs' stored ``metric`` (a diverged run stores none)."""
    label = LABELS[label_index]
    runs = [stored_run(root, target, label, s) for s in SEEDS]
    values = np.array([float(run[metric]) if metric in run else np.nan for run in runs])
    condition = ["diverged" if (target, label, s) == DATA_DIVERGED else "ok" for s in SEEDS]
    return seed_cell(values, np.array(condition))


#: Target → (its dimension, the views the report shows for it): a density for d ≤ 2, the
#: correlation scatter for 3 ≤ d ≤ 100 (not the BNN's 601), the predictive table with held-out
#: data, the reliability diagram for a classifier, the paths for the diffusion.
VIEWS_BY_TARGET = {
    "banana": (2, ["density", "loss"]),
    "gmm1d": (1, ["density", "loss"]),
    "student_t2d": (2, ["density", "loss"]),
    "linreg_conjugate": (5, ["correlation", "loss"]),
    "blr_waveform": (22, ["predictive", "correlation", "reliability", "loss"]),
    "blr_breast_cancer": (31, ["predictive", "correlation", "reliability", "loss"]),
    "diffusion": (100, ["correlation", "paths", "loss"]),
    "bnn_diabetes": (601, ["predictive", "loss"]),
}


def described_target_data(name: str, root: Path) -> views.TargetData:
    """TargetData of ``name`` without runs: its real TargetDescription, and a MetricSet with
    what the evaluation stores for it (reliability curves for a classifier, here of 4 draws at
    0)."""
    target = make_target(name)
    draws = np.zeros((4, target.dim))
    _, reliability = predictive_evaluation(draws, draws, target, EvaluationSettings())
    metrics = artifacts.metric_set({"kl_qp_knn": 0.1}, name, "svgd", 0, reliability=reliability)
    description = describe(name, root / f"{name}.zarr", {})
    return views.TargetData(name, (), metrics.sel(target=name), {}, description)


@pytest.mark.parametrize("name", VIEWS_BY_TARGET)
def test_views_are_chosen_by_target_type(name: str, tmp_path: Path, data_views) -> None:
    dim, expected = VIEWS_BY_TARGET[name]
    assert make_target(name).dim == dim
    data = described_target_data(name, tmp_path)
    assert data.dim == dim and views.applicable_views(data) == expected
    if name in data_views:  # the report's own inputs choose the same views
        assert views.applicable_views(data_views[name]) == expected


def test_path_band_of_gaussian_draws() -> None:
    """Draws N(m_k, s_k²): the band is m ± 1.959964 s. With S = 40 000 draws the sd of the mean
    is s/√S = 0.005 s and that of the 2.5 % / 97.5 % sample quantiles √(p(1 − p)/S)/φ(1.96) · s
    = 0.0134 s; the tolerances are 5 of those sds (per coordinate, 8 coordinates)."""
    rng = np.random.default_rng(7)
    m, s = np.linspace(-3, 3, 8), np.linspace(0.1, 2.0, 8)
    draws = m + s * rng.standard_normal((40_000, 8))
    draws[:5] = np.nan  # dropped, not propagated
    band = summaries.path_band(draws, 0.95)
    z = 1.959964
    assert np.all(np.abs(band.mean - m) < 5 * 0.005 * s)
    assert np.all(np.abs(band.lower - (m - z * s)) < 5 * 0.0134 * s)
    assert np.all(np.abs(band.upper - (m + z * s)) < 5 * 0.0134 * s)
    finite = draws[5:]
    np.testing.assert_allclose(band.lower, np.percentile(finite, 2.5, axis=0), rtol=1e-12)
    np.testing.assert_allclose(band.upper, np.percentile(finite, 97.5, axis=0), rtol=1e-12)
    assert np.isnan(summaries.path_band(np.full((3, 2), np.nan)).mean).all()


def test_correlation_pairs_equal_the_metric() -> None:
    rng = np.random.default_rng(3)
    d = 22
    tril = np.tril(rng.normal(size=(d, d)))
    reference = rng.standard_normal((3000, d)) @ tril.T
    samples = 0.5 * reference[:2000] + rng.standard_normal((2000, d)) @ tril.T
    pairs = summaries.correlation_pairs(samples, reference)
    metric = correlation_comparison(samples, reference)
    assert pairs.reference.shape == pairs.method.shape == (d * (d - 1) // 2,)
    assert pairs.pearson_r == metric["corr_pearson_r"] and pairs.slope == metric["corr_slope"]
    slope, _ = np.polyfit(pairs.reference, pairs.method, 1)
    assert pairs.slope == pytest.approx(slope, rel=1e-10)
    assert pairs.pearson_r == pytest.approx(
        np.corrcoef(pairs.reference, pairs.method)[0, 1], rel=1e-10
    )
    assert np.max(np.abs(pairs.method - pairs.reference)) == metric["corr_max_abs_diff"]
    # the panel title shows both to 3 decimals
    figure = correlation_figure([Series("m", "red", pairs)])
    assert figure.axes[0].get_title() == f"m\nr = {pairs.pearson_r:.3f}, slope = {pairs.slope:.3f}"


def test_report_correlation_panels_are_the_first_seed_metrics(data_views) -> None:
    data = data_views["blr_waveform"]
    panels = views.correlation_panels(data)
    assert [p.title for p in panels] == ["svgd (diverged)", "ksivi_u"]
    reference = rn.read_reference(data.runs[0].reference_path)[0]
    for panel, run in zip(panels, rn.first_seed_runs(data.runs).values()):
        assert run.seed == 0
        metric = correlation_comparison(rn.read_samples(run), reference)
        # exact equality (NaN == NaN here: the metric is undefined for the diverged run's draws)
        np.testing.assert_equal(panel.data.pearson_r, metric.get("corr_pearson_r", np.nan))
        np.testing.assert_equal(panel.data.slope, metric.get("corr_slope", np.nan))
        assert panel.data.reference.shape == (231,)
    assert np.isnan(panels[0].data.pearson_r)  # NaN draws: the metric is undefined, title "—"
    assert 0 < panels[1].data.slope < 0.9  # label 1 adds independent noise: correlations shrink


def stored_curve(run: xr.Dataset, prefix: str = "") -> dict[str, np.ndarray]:
    """A run's stored reliability curve (``prefix`` ``"reference_"``: the reference's) on its
    non-empty bins: confidence, frequency, count."""
    fields = {f: run[f"reliability_{prefix}{f}"].values for f in ("confidence", "frequency")}
    count = run[f"reliability_{prefix}count"].values
    return {name: values[count > 0] for name, values in (fields | {"count": count}).items()}


def assert_line_is_stored(line: summaries.ReliabilityLine, run: xr.Dataset, prefix: str) -> None:
    """``line`` is the run's stored curve (non-empty bins) with its stored ECE, exactly."""
    expected = stored_curve(run, prefix)
    for name, values in expected.items():
        np.testing.assert_array_equal(getattr(line.curve, name), values, err_msg=name)
    assert line.ece == float(run[f"{prefix}ece"])


def test_reliability_lines_are_the_stored_curves(data_report, data_views) -> None:
    """The diverged first-seed svgd run has no curve (the evaluation does not score it): the
    diagram shows the reference's curve, from ksivi_u's MetricSet, and ksivi_u's."""
    data = data_views["blr_waveform"]
    lines = views.reliability_lines(data)
    assert [line.title for line in lines] == ["reference (stan)", "ksivi_u"]
    run = stored_run(data_report[0], "blr_waveform", "ksivi_u", 0)
    assert run.sizes["calibration_bin"] == EvaluationSettings().calibration_bins == 10
    for line, prefix in zip(lines, ["reference_", ""]):
        assert_line_is_stored(line.data, run, prefix)
        assert line.data.curve.count.sum() == len(make_target("blr_waveform").test_response())
        assert line.data.curve.count.sum() == 4600
    legend = [t.get_text() for t in reliability_figure(lines).axes[0].get_legend().get_texts()]
    assert legend[1:] == [
        f"reference (stan) (ECE {float(run['reference_ece']):.3f})",
        f"ksivi_u (ECE {float(run['ece']):.3f})",
    ]


def test_diffusion_panels_band_the_first_seed_samples(data_views) -> None:
    data = data_views["diffusion"]
    reference, panels = views.path_panels(data)
    target = make_target("diffusion")
    mean, tril = data_posterior(target)
    sd = np.diag(tril)
    # 1000 reference draws of N(m_k, s_k²): quantile sd √(.025 · .975/1000)/φ(1.96) s = 0.085 s;
    # 5 sds, and the mean within 5 s/√1000
    assert np.all(np.abs(reference.data.mean - mean) < 5 * sd / np.sqrt(N_DRAWS))
    assert np.all(np.abs(reference.data.upper - (mean + 1.96 * sd)) < 5 * 0.085 * sd)
    for panel, (run, samples) in zip(panels, data.first_seed):
        assert run.seed == 0
        band = summaries.path_band(samples)
        np.testing.assert_array_equal(panel.data.lower, band.lower)
        np.testing.assert_array_equal(panel.data.upper, band.upper)
    # label 0 is widened by 1.2: its band is 1.2 times the reference's, to Monte-Carlo error
    ratio = (panels[0].data.upper - panels[0].data.lower) / (
        reference.data.upper - reference.data.lower
    )
    assert abs(np.median(ratio) - 1.2) < 0.05


def test_predictive_table_rows(data_report, data_views) -> None:
    md = (data_report[0] / "report" / "summary.md").read_text()
    for name, columns in {
        "blr_waveform": ["test_log_likelihood", "accuracy", "ece"],
        "bnn_diabetes": ["test_log_likelihood", "rmse"],
    }.items():
        text = section(md, name)
        assert "held-out predictive performance" in text
        header = "| method | " + " | ".join(tables.header_cell(c) for c in columns) + " |"
        assert header in text
        rows = table_rows(text, header)
        assert list(rows) == ["reference (stan)", *LABELS]
        # every scored run stores the same reference scores (the same reference subsample)
        scored = [
            stored_run(data_report[0], name, label, seed)
            for label in LABELS
            for seed in SEEDS
            if (name, label, seed) != DATA_DIVERGED
        ]
        reference_scores = {c: {float(run[f"reference_{c}"]) for run in scored} for c in columns}
        assert all(len(values) == 1 for values in reference_scores.values())
        expected = [format_number(reference_scores[c].pop()) for c in columns]
        assert rows["reference (stan)"] == expected
        # and they are the target's predictive of the reference draws (in another order: equal
        # to the 3 digits shown)
        scores = make_target(name).predictive(data_views[name].reference)
        assert rows["reference (stan)"][:2] == [format_number(scores[c]) for c in columns[:2]]
        for i, label in enumerate(LABELS):
            assert rows[label] == [expected_data_cell(data_report[0], name, i, c) for c in columns]
    # seed 0 diverged: no predictive scores, counted and not averaged
    predictive = table_rows(section(md, "blr_waveform"), "| method | test_log_likelihood")
    assert predictive["svgd"][0].endswith(" (n=2; 1 diverged)")
    assert "BNN: RMSE and log-likelihood on the original scale" in section(md, "bnn_diabetes")
    assert "held-out predictive" not in section(md, "diffusion")


def test_data_report_figures(data_report) -> None:
    report_dir = data_report[0] / "report"
    expected = {
        "blr_waveform_correlation",
        "blr_waveform_reliability",
        "blr_waveform_loss",
        "diffusion_correlation",
        "diffusion_paths",
        "diffusion_loss",
        "bnn_diabetes_loss",
    }
    assert {p.stem for p in (report_dir / "figures").iterdir()} == expected
    for path in (report_dir / "figures").iterdir():
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, path.name
    md = (report_dir / "summary.md").read_text()
    for name in expected:
        target = name.rsplit("_", 1)[0]
        assert f"(figures/{name}.png)" in section(md, target)
    page = (report_dir / "index.html").read_text()
    assert page.count("<img") == len(expected)
    # 3 headline and 3 full target tables, 2 predictive tables, legend, versions
    assert page.count("<table") == 3 + 3 + 2 + 2


def test_reproduction_md_is_one_line_without_rows(data_report) -> None:
    report_dir = data_report[0] / "report"
    assert (report_dir / "reproduction.md").read_text() == NO_REPRODUCTION + "\n"
    assert f"## Reproduction\n\n{NO_REPRODUCTION}" in (report_dir / "summary.md").read_text()
    assert f"## Suspect runs\n\n{NO_SUSPECT}" in (report_dir / "summary.md").read_text()


# --- calibration bins: the report shows the bins the evaluation scored -------------------------

#: Not 5: 5 bins merge the default 10 in pairs, and where both bins of every pair have
#: freq − conf of the same sign (as on this run) the ECE is the same sum; 4 bins are not nested.
BINS = 4


@pytest.fixture(scope="module")
def bins_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rn.ReportStores]:
    """One blr_waveform run (the Laplace stand-in widened by 20 %) scored by the real evaluate
    step with ``calibration_bins`` = :data:`BINS`, and its report."""
    root = tmp_path_factory.mktemp("calibration_bins")
    target = make_target("blr_waveform")
    names, (mean, tril) = target.param_names(), laplace_posterior(target)
    rng = np.random.default_rng(5)
    draws = mean + rng.standard_normal((N_DRAWS, len(mean))) @ tril.T
    reference = write_reference(
        root, "blr_waveform", names, draws.reshape(2, -1, len(mean)), "stan"
    )
    loss = np.exp(-np.arange(50) / 10.0)
    samples = write_sample_set(
        root, "blr_waveform", names, "svgd", 0, method_samples(mean, tril, 0, rng), loss
    )
    metrics = evaluate(
        samples,
        reference,
        run_dir(root, "blr_waveform", "svgd", 0) / "metrics.zarr",
        {"calibration_bins": BINS},
        device="cpu",
    )
    stores = stores_below(root, [metrics])
    build_report(stores, root / "report", total_wall_seconds=1.0)
    return root, stores


def test_report_shows_the_calibration_bins_the_metric_used(bins_report) -> None:
    """Report, MetricSet and a recomputation from the run's draws agree on the 4-bin ECE, and
    it is not the default 10-bin one (0.0267 against 0.0297 on this run)."""
    root, stores = bins_report
    run = stored_run(root, "blr_waveform", "svgd", 0)
    assert run.sizes["calibration_bin"] == BINS
    assert json.loads(run.attrs["evaluation_settings"])["calibration_bins"] == BINS
    assert float(run["suspect"]) == 0.0  # a sane run: its table cells show its values

    lines = views.reliability_lines(report_target_data(stores)["blr_waveform"])
    assert [line.title for line in lines] == ["reference (stan)", "svgd"]
    for line, prefix in zip(lines, ["reference_", ""]):
        assert line.data.curve.confidence.size <= BINS
        assert_line_is_stored(line.data, run, prefix)
    legend = [t.get_text() for t in reliability_figure(lines).axes[0].get_legend().get_texts()]
    assert legend[2] == f"svgd (ECE {float(run['ece']):.3f})"

    target = make_target("blr_waveform")
    draws = artifacts.read(stores.samples[0], artifacts.SAMPLE_SET)["samples"].values
    p, y = target.predictive(draws)["probabilities"], target.test_response()
    recomputed = expected_calibration_error(reliability_curve(p, y, BINS))
    assert lines[1].data.ece == float(run["ece"]) == recomputed
    ten_bins = expected_calibration_error(reliability_curve(p, y, 10))
    assert format_number(recomputed) != format_number(ten_bins)  # differs as the table shows it

    text = section((root / "report" / "summary.md").read_text(), "blr_waveform")
    assert f"accuracy, ECE on {BINS} bins" in text
    assert f"({BINS} equal-width bins of P(y = 1))" in text
    header = "| method | " + " | ".join(
        tables.header_cell(c) for c in ("test_log_likelihood", "accuracy", "ece")
    )
    assert table_rows(text, header)["svgd"][2] == f"{format_number(recomputed)} (n=1)"


def test_each_target_shows_its_own_calibration_bins() -> None:
    """Combined over targets, the MetricSet holds every target's reliability variables (NaN
    where a target has none) and the longest calibration_bin dim: a target's views must read
    its own curves, 4 bins for one classifier, 10 for another, none for the diffusion."""

    def run(target: str, bins: int) -> xr.Dataset:
        curve = {name: np.full(bins, 0.5) for name in ("confidence", "frequency", "count")}
        return artifacts.metric_set({"ece": 0.1}, target, "svgd", 0, reliability=curve)

    combined = artifacts.combine_metric_sets(
        [
            run("blr_waveform", 4),
            run("blr_breast_cancer", 10),
            artifacts.metric_set({"kl_qp_knn": 0.1}, "diffusion", "svgd", 0),
        ]
    )
    assert combined.sizes["calibration_bin"] == 10
    waveform, breast_cancer, diffusion = (
        combined.sel(target=t) for t in ("blr_waveform", "blr_breast_cancer", "diffusion")
    )
    assert views.is_classifier(waveform) and views.is_classifier(breast_cancer)
    assert not views.is_classifier(diffusion)
    assert (views.calibration_bins(waveform), views.calibration_bins(breast_cancer)) == (4, 10)


# --- the report reads the stores it is given, and no target ------------------------------------


@pytest.mark.parametrize(
    ("kind", "what", "option"),
    [
        ("samples", "SampleSet given for ('banana', 'sivi', 0)", "--samples"),
        ("references", "ReferenceDraws given for banana", "--references"),
        ("descriptions", "TargetDescription given for banana", "--descriptions"),
    ],
)
def test_a_store_not_given_fails_naming_it_and_writes_nothing(
    curve_report, tmp_path: Path, kind: str, what: str, option: str
) -> None:
    """Left out: the SampleSet of banana / sivi / seed 0, or banana's ReferenceDraws or
    TargetDescription; the stores are still on disk, but the report must not look for them."""
    stores = curve_report[1]
    left_out = run_dir(curve_report[0], "banana", "sivi", 0) / "samples.zarr"
    kept = {
        "samples": [p for p in stores.samples if p != left_out],
        "references": [],
        "descriptions": [],
    }[kind]
    assert len(kept) == len(getattr(stores, kind)) - 1
    out = tmp_path / "report"
    with pytest.raises(rn.MissingStoreError) as err:
        build_report(dataclasses.replace(stores, **{kind: kept}), out, total_wall_seconds=1.0)
    assert str(err.value) == f"report: no {what}; pass its store with {option}"
    assert not out.exists()


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module an import statement of ``path`` (a module of ``package``) names: ``import
    a.b``, ``from a import b`` (``a`` and ``a.b``), relative imports resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, [base, node.module or ""]))
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_the_report_imports_no_target_module() -> None:
    """The report reads targets only through their TargetDescriptions: no module of it imports
    ``sivi_engine.targets`` (or a submodule), and importing it loads none."""
    report_dir = Path(views.__file__).parent
    sources = sorted(report_dir.glob("*.py"))
    assert len(sources) >= 10 and report_dir / "views.py" in sources
    for path in sources:
        targets = {
            name
            for name in imported_modules(path, "sivi_engine.report")
            if name == "sivi_engine.targets" or name.startswith("sivi_engine.targets.")
        }
        assert not targets, f"{path.name} imports {sorted(targets)}"
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sivi_engine.report; print(*sorted(m for m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "sivi_engine.report.views" in loaded
    assert not [m for m in loaded if m.startswith("sivi_engine.targets")]


# --- reproduction table on a hand-built combined MetricSet --------------------------------------


def hand_built_table() -> xr.Dataset:
    """Target t: label a with seeds 0–2 at 1.0, 1.2, 1.4 (mean 1.2, sd 0.2) and a suspect seed 3
    at 50; label d with seed 0 at 1.0 and a diverged seed 1. Target u: label c only."""
    runs = [("t", "a", s, v, 0.0, 0.0) for s, v in enumerate([1.0, 1.2, 1.4])]
    runs += [
        ("t", "a", 3, 50.0, 1.0, 0.0),
        ("t", "d", 0, 1.0, 0.0, 0.0),
        ("t", "d", 1, np.nan, 0.0, 1.0),
        ("u", "c", 0, 3.0, 0.0, 0.0),
    ]
    sets = [
        artifacts.metric_set({"m": v, "suspect": suspect, "diverged": diverged}, t, label, seed)
        for t, label, seed, v, suspect, diverged in runs
    ]
    return artifacts.combine_metric_sets(sets)


def reproduction_row(method: str, paper: float, target: str = "t", **extra) -> dict:
    return {
        "experiment": f"{target}/{method} at {paper}",
        "target": target,
        "method": method,
        "metric": "m",
        "paper": paper,
        "source": "Table 2",
        **extra,
    }


def test_reproduction_verdicts() -> None:
    """|1.5 − 1.2| = 0.3 ≤ 2 · 0.2 = 0.4: within; |1.7 − 1.2| = 0.5 > 0.4: outside (the suspect 50
    would move the mean to 13.4 and the sd to 24.5, putting both within)."""
    config = {
        "reproduction": [
            reproduction_row("a", 1.5, paper_sd=0.1, note="n"),
            reproduction_row("a", 1.7),
            reproduction_row("d", 1.0),
            reproduction_row("c", 3.0),  # c ran on u only
            reproduction_row("b", 1.0),
            reproduction_row("c", 3.0, target="u"),
        ]
    }
    table = reproduction.reproduction_table(reproduction.parse_rows(config), hand_built_table())
    assert table.header[4:8] == (
        "paper",
        "official code here (mean ± sd over seeds)",
        "this project (mean ± sd over seeds)",
        "verdict",
    )
    assert table.rows[0] == (
        "t/a at 1.5",
        "t",
        "a",
        "m",
        "1.5 ± 0.1",
        "—",
        "1.20 ± 0.200 (n=3; 1 suspect)",
        "within seed spread",
        "Table 2",
        "n",
    )
    assert table.rows[1][4:8] == ("1.7", "—", "1.20 ± 0.200 (n=3; 1 suspect)", "outside")
    assert table.rows[2][6:8] == ("1.00 (n=1; 1 diverged)", "n < 2")
    assert table.rows[3][6:8] == ("—", "not run")
    assert table.rows[4][6:8] == ("—", "not run")
    assert table.rows[5][6:8] == ("3.00 (n=1)", "n < 2")


def anchor_lines(values: list[float], metric: str = "m", **flags: list[float]) -> list[dict]:
    """Anchors-file rows of official runs of (repo o/r, config c.yml) on target t, one seed per
    value, with optional per-seed flags (suspect, diverged)."""
    lines = []
    for seed, value in enumerate(values):
        common = {"repo": "o/r", "commit": "0123456789abcdef", "script": "s.py", "config": "c.yml"}
        common |= {"target": "t", "seed": str(seed), "wall_seconds": "1", "threads": "1"}
        lines.append(common | {"metric": metric, "value": str(value)})
        for flag, per_seed in flags.items():
            lines.append(common | {"metric": flag, "value": str(per_seed[seed])})
    return lines


@pytest.mark.parametrize(
    ("metric", "official", "verdict"),
    [
        # project a: 1.0, 1.2, 1.4 (mean 1.2, sd 0.2). Official sd 0.2 too: s_pooled = 0.2
        ("m", [1.3, 1.5, 1.7], "matches"),  # |1.2 − 1.5| = 0.3 ≤ 0.4
        ("mmd2", [1.6, 1.8, 2.0], "better"),  # 0.6 > 0.4, and lower is better
        ("mmd2", [0.4, 0.6, 0.8], "worse"),
        ("m", [0.4, 0.6, 0.8], "differs"),  # a metric without a direction
        ("test_log_likelihood", [0.4, 0.6, 0.8], "better"),  # higher is better
        ("corr_pearson_r", [0.4, 0.6, 0.8], "better"),  # 1.2 is 0.2 from 1, 0.6 is 0.4 from it
        # s_pooled = √(2·0.04 / 4) = 0.141; |1.2 − 0.9| = 0.3 > 0.283; 0.9 is nearer 1 than 1.2
        ("corr_pearson_r", [0.9, 0.9, 0.9], "worse"),
    ],
)
def test_anchored_verdict_rule(metric, official, verdict) -> None:
    # the hand-built table holds m only: the same values stand for the metric under test
    combined = hand_built_table().rename({"m": metric}) if metric != "m" else hand_built_table()
    row = reproduction_row("a", 0.0, metric=metric, anchor_repo="o/r", anchor_config="c.yml")
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), combined, anchor_lines(official, metric)
    )
    assert table.rows[0][7] == verdict
    assert table.rows[0][5].endswith("(n=3) @0123456")


def test_anchored_verdict_boundary_and_pooled_sd() -> None:
    project = tables.SeedSummary(1.0, 0.1, 4, ())
    official = tables.SeedSummary(1.5, 0.3, 2, ())
    # ((4−1)·0.01 + (2−1)·0.09) / (4 + 2 − 2) = 0.03 → s_pooled = 0.1732
    assert reproduction.pooled_sd(project, official) == pytest.approx(0.03**0.5)
    assert reproduction.anchored_verdict(official, project, "mmd2") == "better"  # 0.5 > 0.346
    close = tables.SeedSummary(1.3, 0.3, 2, ())
    assert reproduction.anchored_verdict(close, project, "mmd2") == "matches"  # 0.3 ≤ 0.346
    assert reproduction.anchored_verdict(close, project, "test_log_likelihood") == "matches"
    one = tables.SeedSummary(1.3, math.nan, 1, ())
    assert reproduction.anchored_verdict(one, project, "mmd2") == "n < 2"
    # two MMD² estimates at the noise floor: 4e-4 apart, 4 pooled sds, both below the bound 0
    at_floor = tables.SeedSummary(-5e-4, 1e-4, 3, ())
    near_floor = tables.SeedSummary(-1e-4, 1e-4, 3, ())
    assert reproduction.anchored_verdict(at_floor, near_floor, "mmd2") == "matches"
    assert reproduction.anchored_verdict(at_floor, near_floor, "test_log_likelihood") == "better"


def test_official_runs_flagged_suspect_are_counted_not_averaged() -> None:
    row = reproduction_row("a", 0.0, anchor_repo="o/r", anchor_config="c.yml")
    lines = anchor_lines([1.1, 1.3, 90.0, 1.2], suspect=[0, 0, 1, 0], diverged=[0, 0, 0, 0])
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), hand_built_table(), lines
    )
    assert table.rows[0][5] == "1.20 ± 0.100 (n=3; 1 suspect) @0123456"
    assert table.rows[0][7] == "matches"


def test_a_bad_anchors_file_is_named(tmp_path) -> None:
    with pytest.raises(SettingsError, match="anchors file .*nope.csv not found"):
        reproduction.read_anchors(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("repo,commit,config,target,seed,metric\no/r,c,x.yml,t,0,m\n")
    with pytest.raises(SettingsError, match=r"missing column\(s\) \['value'\]"):
        reproduction.read_anchors(bad)


def test_an_anchor_without_official_runs_says_so() -> None:
    row = reproduction_row("a", 0.0, anchor_repo="o/r", anchor_config="other.yml")
    del row["paper"]
    row["note"] = "plot only"
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), hand_built_table(), anchor_lines([1.0])
    )
    assert table.rows[0][5:8] == ("—", "1.20 ± 0.200 (n=3; 1 suspect)", "official not run")
    del row["anchor_config"]
    with pytest.raises(SettingsError, match="'anchor_repo' and 'anchor_config' go together"):
        reproduction.parse_rows({"reproduction": [row]})


def test_a_row_without_a_paper_figure_shows_the_project_alone() -> None:
    """A paper that reports the quantity only in a plot: the row keeps the project's figure and
    says so instead of judging it against a number nobody quoted."""
    row = reproduction_row("a", 1.0, note="shown only as a plot")
    del row["paper"]
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), hand_built_table()
    )
    assert table.rows[0][4:9] == (
        "—",
        "—",
        "1.20 ± 0.200 (n=3; 1 suspect)",
        "no paper figure",
        "Table 2",
    )
    del row["note"]
    with pytest.raises(SettingsError, match=r"without 'paper' needs a 'note'"):
        reproduction.parse_rows({"reproduction": [row]})


def test_reproduction_rows_name_a_bad_field() -> None:
    assert reproduction.parse_rows({}) == [] and reproduction.parse_rows({"reproduction": []}) == []
    bad = reproduction_row("a", 1.0)
    del bad["source"]
    with pytest.raises(SettingsError, match=r"reproduction\[1\]: missing \['source'\]"):
        reproduction.parse_rows({"reproduction": [reproduction_row("a", 1.0), bad]})
    with pytest.raises(SettingsError, match=r"unknown \['paper_se'\].*paper_sd"):
        reproduction.parse_rows({"reproduction": [reproduction_row("a", 1.0, paper_se=0.1)]})


# --- quality along training: curves, time to quality, KSIVI estimators ---------------------------

CURVE_LABELS = {"ksivi_v": "vstat", "ksivi_u": "ustat", "sivi": None}  # label → KSIVI estimator
CHECKPOINTS = np.array([1, 2, 5, 10, 20, 50, 100])
SECONDS_PER_ITERATION = {"ksivi_v": 0.01, "ksivi_u": 0.02, "sivi": 0.004}  # × (1 + seed/10)
MMD2_SCALE = {"ksivi_v": 0.025, "ksivi_u": 1.0, "sivi": 0.001}  # mmd2 = scale · (1 + seed) / it
CURVE_SUSPECT = ("sivi", 2)
ON_BUDGET = ("sivi", 1)  # stopped after 5 of the 7 checkpoints: NaN-padded when combined
FLOORS = {"floor_mmd2": -3e-4, "floor_sliced_w1": 0.002, "floor_mean_error_std": 0.01}


def fake_curves(label: str, seed: int) -> dict[str, np.ndarray]:
    iteration = CHECKPOINTS[: 5 if (label, seed) == ON_BUDGET else None].astype(float)
    return {
        "iteration": iteration,
        "seconds": iteration * SECONDS_PER_ITERATION[label] * (1 + 0.1 * seed),
        "mmd2": MMD2_SCALE[label] * (1 + seed) / iteration,
        "sliced_w1": 0.5 * (1 + seed) / np.sqrt(iteration),
        "mean_error_std": 2.0 / iteration,
    }


def write_curve_results(root: Path) -> list[Path]:
    """banana: three labels × three seeds with the known curves of :func:`fake_curves`."""
    target = make_target("banana")
    gen = torch.Generator().manual_seed(0)
    names = target.param_names()
    write_reference(root, "banana", names, target.sample(500, gen).numpy().reshape(2, 250, 2))
    paths = []
    for label, estimator in CURVE_LABELS.items():
        settings = json.dumps({"estimator": estimator} if estimator else {})
        for seed in SEEDS:
            curves = fake_curves(label, seed)
            final = {m: float(curves[m][-1]) for m in ("mmd2", "sliced_w1", "mean_error_std")}
            final["kl_qp_knn"] = 0.1  # scored on the final draws only
            reasons = ("kl_qp_knn above the gate",) if (label, seed) == CURVE_SUSPECT else ()
            paths.append(
                write_run(
                    root,
                    "banana",
                    names,
                    label,
                    seed,
                    target.sample(200, gen).numpy(),
                    final | FLOORS,
                    np.exp(-np.arange(20) / 5.0),
                    suspect_reasons=reasons,
                    curves=curves,
                    settings=settings,
                )
            )
    return paths


@pytest.fixture(scope="module")
def curve_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rn.ReportStores]:
    root = tmp_path_factory.mktemp("curve_results")
    stores = stores_below(root, write_curve_results(root))
    build_report(stores, root / "report", table_path=root / "metrics.zarr", total_wall_seconds=1.0)
    return root, stores


@pytest.fixture(scope="module")
def curve_data(curve_report) -> views.TargetData:
    return report_target_data(curve_report[1])["banana"]


def test_quality_threshold_scales_the_floor_with_a_resolution() -> None:
    """τ = 2·max(|floor|, 1e-4): a negative floor counts by its size, a floor nearer 0 than the
    MMD² scatter is raised to 1e-4."""
    np.testing.assert_allclose(
        curves.quality_threshold(np.array([-3e-4, 2e-5, 5e-3])), [6e-4, 2e-4, 1e-2], rtol=1e-12
    )
    assert np.isnan(curves.quality_threshold(np.array([np.nan]))).all()


def test_time_to_quality_table(curve_data) -> None:
    """τ = 2 · 3e-4 = 6e-4. ksivi_v: mmd2 = 0.025 (1 + s)/it first ≤ τ at it 50 (seed 0, 0.5 s),
    100 (seed 1, 1.1 s), never (seed 2: 7.5e-4 at 100) → median 1.1 s, it 100. ksivi_u: never.
    sivi: seed 0 at it 2 (0.008 s), seed 1 at it 5 (0.022 s, its last checkpoint), seed 2
    suspect, left out → median 0.015 s, it 3.5."""
    table = curves.time_to_quality_table(curve_data.metrics, curve_data.labels)
    assert table.header == (
        "method",
        "seconds to mmd2 ≤ τ (median)",
        "iteration (median)",
        "seeds reached",
        "τ (median)",
    )
    assert table.rows == (
        ("ksivi_v", "1.10 s", "100", "2 of 3", "6.00e-04"),
        ("ksivi_u", "not reached", "not reached", "0 of 3", "6.00e-04"),
        ("sivi", "0.0150 s", "3.5", "2 of 2; 1 suspect", "6.00e-04"),
    )


def test_headline_table_is_compact(curve_data) -> None:
    """The headline discrepancies the runs hold (mmd2, sliced_w1; kl_qp_knn is not one), time
    to quality and seeds reached; never more than 8 columns."""
    assert curves.HEADLINE_COLUMNS <= 8
    table = curves.headline_table(curve_data.metrics, curve_data.labels)
    assert table.header == (
        "method",
        "mmd2 ↓",
        "sliced_w1 ↓",
        "seconds to mmd2 ≤ τ (median)",
        "seeds reached",
    )
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["ksivi_v"][2:] == ("1.10 s", "2 of 3")
    assert rows["sivi"][2:] == ("0.0150 s", "2 of 2; 1 suspect")
    # sliced_w1 = 0.5 (1 + s)/√it at the last checkpoint: it 100 for ksivi_u
    expected = seed_cell(np.array([0.05, 0.1, 0.15]), np.array(["ok"] * 3))
    assert rows["ksivi_u"][1] == expected


def test_seed_bands_average_ok_seeds_and_skip_padding(curve_data) -> None:
    ksivi_v = curves.label_band(curve_data.metrics, "ksivi_v", "mmd2", curves.SECONDS)
    # checkpoint 10: seconds 0.10, 0.11, 0.12 and mmd2 0.0025, 0.005, 0.0075 over seeds 0–2
    assert ksivi_v.x.size == 7 and ksivi_v.x[3] == pytest.approx(0.11, rel=1e-12)
    assert (ksivi_v.mean[3], ksivi_v.lower[3], ksivi_v.upper[3]) == pytest.approx(
        (0.005, 0.0025, 0.0075), rel=1e-12
    )
    sivi = curves.label_band(curve_data.metrics, "sivi", "mmd2", curves.ITERATION)
    np.testing.assert_array_equal(sivi.x, CHECKPOINTS)
    # iteration 1: seeds 0, 1 (0.001, 0.002); the suspect seed 2 (0.003) is left out
    assert (sivi.mean[0], sivi.upper[0]) == pytest.approx((0.0015, 0.002), rel=1e-12)
    # iterations 50, 100: seed 1 stopped on its budget at 20, only seed 0 is left
    np.testing.assert_allclose(sivi.mean[5:], 0.001 / CHECKPOINTS[5:], rtol=1e-12)
    np.testing.assert_array_equal(sivi.lower[5:], sivi.upper[5:])


def test_curve_figure_axes_and_legend(curve_data) -> None:
    panels = views.curve_panels(curve_data)
    assert [(p.ylabel, p.xlabel) for p in panels] == [
        (f"{m} ↓", x)
        for m in ("mmd2", "sliced_w1", "mean_error_std")
        for x in ("iteration", "training-loop seconds")
    ]
    assert panels[0].levels == {"threshold τ": pytest.approx(6e-4)}
    assert panels[2].levels == {"reference floor": pytest.approx(0.002)}
    figure = fig.curve_figure(panels, ncols=2)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert len(axes) == 6 and {ax.get_xscale() for ax in axes} == {"log"}
    assert {ax.get_yscale() for ax in axes} == {"log"}  # every value and level is positive
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["ksivi_v", "ksivi_u", "sivi", "threshold τ", "reference floor"]


def test_ksivi_estimator_figure_needs_both_estimators(curve_data) -> None:
    panels = views.ksivi_estimator_panels(curve_data)
    assert [p.ylabel for p in panels] == ["mmd2 ↓", "sliced_w1 ↓"]
    assert [line.title for line in panels[0].lines] == ["ksivi_v (vstat)", "ksivi_u (ustat)"]
    only_v = dataclasses.replace(
        curve_data, runs=tuple(r for r in curve_data.runs if r.label != "ksivi_u")
    )
    assert views.ksivi_estimator_panels(only_v) == [] and views.ksivi_estimator_blocks(only_v) == []


def test_curve_report_headline_tables_and_csv(curve_report) -> None:
    root = curve_report[0]
    md = (root / "report" / "summary.md").read_text()
    sections = re.findall(r"^## (.+)$", md, flags=re.MULTILINE)
    assert sections[:3] == ["Run summary", "Quality along training", "Suspect runs"]
    headline = md.split("## Quality along training\n")[1].split("\n## ")[0]
    assert BUDGET_NOTE in headline and "--configfile config/paper.yaml" in headline
    assert "### banana (along training)" in headline and curves.QUALITY_RULE in headline
    assert "| ksivi_v | 1.10 s | 100 | 2 of 3 | 6.00e-04 |" in headline  # folded detail
    assert "<details><summary>time to quality: iterations and thresholds</summary>" in headline
    mmd2 = seed_cell(np.array([2.5e-4, 5e-4, 7.5e-4]), np.array(["ok"] * 3))
    assert f"| ksivi_v | {mmd2} | " in headline and "| 1.10 s | 2 of 3 |" in headline
    for name in ("banana_curves", "banana_ksivi_estimators"):
        assert f"(figures/{name}.png)" in headline
        assert (root / "report" / "figures" / f"{name}.png").stat().st_size > 10_000
    # the last-iteration table: final values only, no curve or floor columns; sivi's mmd2 at
    # the last checkpoint of seeds 0 and 1: 0.001/100 and 0.002/20 (stopped on budget)
    header = next(
        line for line in section(md, "banana").splitlines() if line.startswith("| method")
    )
    assert header == "| method | kl_qp_knn ↓ | mmd2 ↓ | sliced_w1 ↓ | mean_error_std ↓ |"
    expected = seed_cell(np.array([1e-5, 1e-4, 0.0]), np.array(["ok", "ok", "suspect"]))
    assert table_rows(section(md, "banana"), "| method |")["sivi"][1] == expected
    csv = pd.read_csv(root / "metrics.csv")
    assert len(csv) == len(CURVE_LABELS) * len(SEEDS)  # one row per run, not per checkpoint
    assert not [c for c in csv.columns if c.startswith("curve_")]
    assert list(csv.columns[-3:]) == sorted(FLOORS) and (csv["floor_mmd2"] == -3e-4).all()
    stored = artifacts.read(root / "metrics.zarr", artifacts.METRIC_SET)
    assert dict(stored["curve_mmd2"].sizes) == {
        "target": 1,
        "method": 3,
        "seed": 3,
        "checkpoint": 7,
    }
    assert np.isnan(stored["curve_mmd2"].sel({"method": "sivi", "seed": 1}).values[0, 5:]).all()


def test_report_without_curves_says_so(report: Path) -> None:
    md = (report / "report" / "summary.md").read_text()
    assert f"{BUDGET_NOTE}\n\n{NO_CURVES}\n\n### banana (along training)" in md


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([1e-2, 1e-3, 2e-4], "log"),
        ([1e-2, 1e-3, -2e-4], "symlog"),  # an unbiased MMD² or kNN KL dipping below 0
        ([-0.7, -0.5, -0.3], "linear"),  # held-out log-likelihoods
    ],
)
def test_curve_axis_scale_follows_the_signs(values, scale) -> None:
    band = curves.seed_band(np.array([[1.0, 10.0, 100.0]]), np.array([values]))
    panel = fig.CurvePanel("m", "iteration", [Series("a", "black", band)], {})
    ax = fig.curve_figure([panel], ncols=1).axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", scale)


def test_pairs_a_method_cannot_run_are_listed_with_the_reason(report: Path) -> None:
    for page in ("summary.md", "index.html"):
        text = (report / "report" / page).read_text()
        assert "Not run" in text, page
        assert "diffusion / livi: its d × d Jacobian is too costly" in text, page


def test_no_not_run_section_without_such_pairs(data_report) -> None:
    assert "Not run" not in (data_report[0] / "report" / "summary.md").read_text()


def test_not_run_pairs_of_one_label_and_reason_share_a_line() -> None:
    """A data set swept over splits leaves one pair per split out; the report lists them on
    one line per label and reason."""
    from sivi_engine.report.document import NotRun, not_run_blocks
    from sivi_engine.report.render import Bullets

    pairs = [
        NotRun("y_split0", "livi", "R"),
        NotRun("y_split1", "livi", "R"),
        NotRun("d", "h", "S"),
    ]
    bullets = [b for b in not_run_blocks(pairs) if isinstance(b, Bullets)][0]
    assert bullets.items == ("y_split0, y_split1 / livi: R", "d / h: S")
