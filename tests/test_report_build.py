"""The report built end to end on a tiny fake result set: 2 analytic targets × 2 labels × 3
seeds with one suspect and one diverged run, a config with reproduction rows and a not-run
pair, and an anchors file; and the report package's imports."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from report_fixtures import (
    LABELS,
    SEEDS,
    section,
    stores_below,
    table_rows,
    write_reference,
    write_run,
)

from sivi_engine import artifacts
from sivi_engine.report import build_report, views
from sivi_engine.report.document import BUDGET_NOTE, NO_CURVES
from sivi_engine.report.tables import format_number
from sivi_engine.targets import make_target

TARGETS = ("banana", "gmm1d")


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
        metrics |= {"kl_qp_density": 0.05 * (seed + 1), "corr_max_abs_diff": 0.01}
    return metrics


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


def test_combined_store_and_csv(report: Path) -> None:
    combined = artifacts.read(report / "metrics.zarr", artifacts.METRIC_SET)
    assert dict(combined.sizes) == {"target": 2, "method": 2, "seed": 3}
    assert list(combined["target"].values) == list(TARGETS)
    assert list(combined["method"].values) == list(LABELS)
    run = {"target": "banana", "method": "svgd", "seed": 1}
    expected = fake_metrics("banana", LABELS.index("svgd"), 1)["kl_qp_knn"]
    assert combined["kl_qp_knn"].sel(run).item() == pytest.approx(expected)
    assert np.isnan(combined["kl_qp_density"].sel(target="gmm1d")).all()

    csv = pd.read_csv(report / "metrics.csv")
    assert list(csv.columns[:5]) == ["target", "method", "seed", "suspect", "diverged"]
    assert len(csv) == len(TARGETS) * len(LABELS) * len(SEEDS)
    row = csv[(csv.target == "banana") & (csv.method == "ksivi_u") & (csv.seed == 1)].iloc[0]
    assert row["kl_qp_density"] == pytest.approx(0.1)
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
        assert ("kl_qp_density" in header) == (target == "banana")
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


def test_report_without_curves_says_so(report: Path) -> None:
    md = (report / "report" / "summary.md").read_text()
    assert f"{BUDGET_NOTE}\n\n{NO_CURVES}\n\n### banana (along training)" in md


def test_pairs_a_method_cannot_run_are_listed_with_the_reason(report: Path) -> None:
    for page in ("summary.md", "index.html"):
        text = (report / "report" / page).read_text()
        assert "Not run" in text, page
        assert "diffusion / livi: its d × d Jacobian is too costly" in text, page


# --- the report imports no target, method or metric code ------------------------------------

#: What the report never imports: it reads targets through their TargetDescriptions, metrics
#: and their metadata through the MetricSets' variables and attributes.
NOT_IMPORTED = (
    "sivi_engine.targets",
    "sivi_engine.methods",
    "sivi_engine.metrics",
    "sivi_engine.metric_catalogue",
    "torch",
)


def is_excluded(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in NOT_IMPORTED)


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


def test_the_report_imports_no_target_method_or_metric_code() -> None:
    """No module of the report imports a target, method or metric module (or the metadata
    catalogue, or torch), and importing the report loads none of them."""
    report_dir = Path(views.__file__).parent
    sources = sorted(report_dir.glob("*.py"))
    assert len(sources) >= 10 and report_dir / "views.py" in sources
    for path in sources:
        excluded = {n for n in imported_modules(path, "sivi_engine.report") if is_excluded(n)}
        assert not excluded, f"{path.name} imports {sorted(excluded)}"
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
    assert not [m for m in loaded if is_excluded(m)]
