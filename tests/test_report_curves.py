"""Quality along training in the report: curves, time to quality, the headline table, a
method's labels compared; and, on the same stores, that the report reads only the stores it is
given."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from metric_fixtures import DESCRIBE
from report_fixtures import (
    SEEDS,
    report_target_data,
    run_dir,
    section,
    stores_below,
    table_rows,
    write_reference,
    write_run,
)

from sivi_engine import artifacts
from sivi_engine.report import build_report, curves, views
from sivi_engine.report import figures as fig
from sivi_engine.report import runs as rn
from sivi_engine.report.document import BUDGET_NOTE
from sivi_engine.report.tables import seed_cell
from sivi_engine.targets import make_target

# --- quality along training: curves, time to quality, setting comparisons -------------------------

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


def metrics_with_role(role: str) -> list[str]:
    """The catalogue's metrics that the report shows in ``role``."""
    return [name for name, info in DESCRIBE.merged.named.items() if role in dict(info.roles)]


def test_headline_table_is_compact(curve_data) -> None:
    """The headline discrepancies the runs hold (mmd2, sliced_w1; kl_qp_knn is not one), time
    to quality and seeds reached; never more than 8 columns (method, the headline role's metrics,
    time to quality, seeds)."""
    assert 2 + len(metrics_with_role("headline")) + 1 <= 8
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


def test_a_methods_labels_are_compared_along_training(curve_data) -> None:
    """KSIVI's two labels differ in ``estimator``: one comparison, its two leading curve
    metrics against iterations, the legend naming the setting; none with one label left."""
    (comparison,) = views.setting_comparisons(curve_data.runs)
    assert (comparison.method, comparison.settings) == ("ksivi", ("estimator",))
    panels = views.comparison_panels(curve_data, comparison)
    assert [p.ylabel for p in panels] == ["mmd2 ↓", "sliced_w1 ↓"]
    assert [line.title for line in panels[0].lines] == [
        "ksivi_v (estimator = vstat)",
        "ksivi_u (estimator = ustat)",
    ]
    only_v = tuple(r for r in curve_data.runs if r.label != "ksivi_u")
    assert views.setting_comparisons(only_v) == []
    many = {f"s{i}": i for i in range(views.LEGEND_SETTINGS)}  # with estimator: one too many
    differing = tuple(
        dataclasses.replace(r, settings=r.settings | many) if r.label == "ksivi_u" else r
        for r in curve_data.runs
    )
    (comparison,) = views.setting_comparisons(differing)
    assert len(comparison.settings) == views.LEGEND_SETTINGS + 1
    assert comparison.legend("ksivi_u") == "ksivi_u"


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
    for name in ("banana_curves", "banana_ksivi_labels"):
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


# --- the report reads the stores it is given ----------------------------------------------------


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
