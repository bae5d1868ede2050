"""The report's views of the data targets (logistic regression, diffusion, BNN) with Gaussian
stand-in posteriors: views chosen by target type, correlation panels, reliability diagrams
and their calibration bins, diffusion paths, the predictive table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from metric_fixtures import metric_set
from report_fixtures import (
    LABELS,
    SEEDS,
    bare_run,
    report_target_data,
    run_dir,
    section,
    stores_below,
    table_rows,
    write_reference,
    write_run,
    write_sample_set,
)

from sivi_engine import artifacts
from sivi_engine.metrics import (
    EvaluationContext,
    EvaluationSettings,
    correlation_comparison,
    correlation_pairs,
    evaluate_groups,
    reliability_curves,
)
from sivi_engine.metrics.correlation import pairwise_correlations
from sivi_engine.metrics.predictive import expected_calibration_error, reliability_curve
from sivi_engine.report import build_report, legend, summaries, views
from sivi_engine.report import runs as rn
from sivi_engine.report.document import NO_REPRODUCTION, NO_SUSPECT
from sivi_engine.report.figures import reliability_figure
from sivi_engine.report.tables import format_number, seed_cell
from sivi_engine.steps.describe import describe
from sivi_engine.steps.evaluate import evaluate
from sivi_engine.targets import make_target

# --- data targets: predictive table, correlation scatter, reliability diagram, diffusion paths ---

DATA_TARGETS = ("blr_waveform", "diffusion", "bnn_diabetes")
DATA_DIVERGED = ("blr_waveform", "svgd", 0)  # a first-seed run: its panels carry the status
N_DRAWS = 1000

#: Metric metadata as every MetricSet carries it (header hints).
METADATA = metric_set(
    dict.fromkeys(("test_log_likelihood", "accuracy", "ece", "rmse"), 0.0), "t", "m", 0
)


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


def scored_evaluation(
    samples: np.ndarray, reference: np.ndarray, target, settings: EvaluationSettings
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The predictive metrics (q's and ``reference_*``) and correlation metrics, the
    reliability curves and the pairwise correlations of a run, computed by the evaluation's own
    code (no predictive ones for a target without held-out data)."""
    ctx = EvaluationContext(samples, reference, target, settings)
    metrics = evaluate_groups(ctx, ["predictive", "correlation"])
    return metrics, reliability_curves(ctx), correlation_pairs(ctx)


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
                scored, reliability, pairs = {}, {}, {}
                if (target_name, label, seed) == DATA_DIVERGED:
                    samples[-100:] = np.nan
                    status = "diverged"
                else:
                    scored, reliability, pairs = scored_evaluation(
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
                        metrics | scored,
                        loss,
                        status,
                        reliability=reliability,
                        pairs=pairs,
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
    draws = np.random.default_rng(0).standard_normal((4, target.dim))
    _, reliability, pairs = scored_evaluation(draws, draws, target, EvaluationSettings())
    metrics = metric_set({"kl_qp_knn": 0.1}, name, "svgd", 0, reliability=reliability, pairs=pairs)
    path = artifacts.write(
        metrics.assign_attrs(created="c", versions="{}"),
        root / f"{name}_metrics.zarr",
        artifacts.METRIC_SET,
    )
    description = describe(name, root / f"{name}.zarr", {})
    run = bare_run(name, "svgd", metrics_path=path)
    return views.TargetData(name, (run,), metrics.sel(target=name), {}, description)


@pytest.mark.parametrize("name", VIEWS_BY_TARGET)
def test_views_are_chosen_by_target_type(name: str, tmp_path: Path, data_views) -> None:
    dim, expected = VIEWS_BY_TARGET[name]
    assert make_target(name).dim == dim
    data = described_target_data(name, tmp_path)
    assert data.dim == dim and views.applicable_views(data) == expected
    if name in data_views:  # the report's own inputs choose the same views
        assert views.applicable_views(data_views[name]) == expected


def test_report_correlation_panels_are_the_first_seed_stored_pairs(data_views) -> None:
    """Each first-seed run's stored pairs, with its stored r and slope; the diverged first-seed
    run was not scored, so it has no panel."""
    data = data_views["blr_waveform"]
    panels = views.correlation_panels(data)
    assert [p.title for p in panels] == ["ksivi_u"]
    reference = rn.read_reference(data.runs[0].reference_path)[0]
    run = rn.first_seed_runs(data.runs)["ksivi_u"]
    samples = rn.read_samples(run)
    metric = correlation_comparison(samples, reference)
    pairs = panels[0].data
    assert pairs.pearson_r == metric["corr_pearson_r"] and pairs.slope == metric["corr_slope"]
    np.testing.assert_array_equal(pairs.reference, pairwise_correlations(reference))
    np.testing.assert_array_equal(pairs.method, pairwise_correlations(samples))
    assert pairs.reference.shape == (231,) and pairs.kind == "corr"
    assert 0 < pairs.slope < 0.9  # label 1 adds independent noise: correlations shrink


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
        header = "| method | " + " | ".join(legend.header_cell(METADATA, c) for c in columns) + " |"
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
    # the caption gives each column's meaning from its stored metadata
    bnn = section(md, "bnn_diabetes")
    assert "rmse: held-out RMSE of the posterior predictive mean, original scale" in bnn
    assert "ECE on" not in bnn and "ECE on 10 equal-width bins" in section(md, "blr_waveform")
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


def test_no_not_run_section_without_such_pairs(data_report) -> None:
    assert "Not run" not in (data_report[0] / "report" / "summary.md").read_text()


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
    entries = [t.get_text() for t in reliability_figure(lines).axes[0].get_legend().get_texts()]
    assert entries[2] == f"svgd (ECE {float(run['ece']):.3f})"

    target = make_target("blr_waveform")
    draws = artifacts.read(stores.samples[0], artifacts.SAMPLE_SET)["samples"].values
    p, y = target.predictive(draws)["probabilities"], target.test_response()
    recomputed = expected_calibration_error(reliability_curve(p, y, BINS))
    assert lines[1].data.ece == float(run["ece"]) == recomputed
    ten_bins = expected_calibration_error(reliability_curve(p, y, 10))
    assert format_number(recomputed) != format_number(ten_bins)  # differs as the table shows it

    text = section((root / "report" / "summary.md").read_text(), "blr_waveform")
    assert f"ECE on {BINS} equal-width bins" in text
    assert f"({BINS} equal-width bins of P(y = 1))" in text
    header = "| method | " + " | ".join(
        legend.header_cell(METADATA, c) for c in ("test_log_likelihood", "accuracy", "ece")
    )
    assert table_rows(text, header)["svgd"][2] == f"{format_number(recomputed)} (n=1)"


def test_each_target_shows_its_own_calibration_bins() -> None:
    """Combined over targets, the MetricSet holds every target's reliability variables (NaN
    where a target has none) and the longest calibration_bin dim: a target's views must read
    its own curves, 4 bins for one classifier, 10 for another, none for the diffusion."""

    def run(target: str, bins: int) -> xr.Dataset:
        curve = {name: np.full(bins, 0.5) for name in ("confidence", "frequency", "count")}
        return metric_set({"ece": 0.1}, target, "svgd", 0, reliability=curve)

    combined = artifacts.combine_metric_sets(
        [
            run("blr_waveform", 4),
            run("blr_breast_cancer", 10),
            metric_set({"kl_qp_knn": 0.1}, "diffusion", "svgd", 0),
        ]
    )
    assert combined.sizes["calibration_bin"] == 10
    waveform, breast_cancer, diffusion = (
        combined.sel(target=t) for t in ("blr_waveform", "blr_breast_cancer", "diffusion")
    )
    assert views.is_classifier(waveform) and views.is_classifier(breast_cancer)
    assert not views.is_classifier(diffusion)
    assert (views.calibration_bins(waveform), views.calibration_bins(breast_cancer)) == (4, 10)
