"""What the views plot: the band of the diffusion's paths and the pairwise correlations."""

from __future__ import annotations

import numpy as np
import pytest

from sivi_engine.metrics.correlation import compared_pairs, correlation_comparison
from sivi_engine.report import summaries
from sivi_engine.report.figures import Series, correlation_figure


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


def test_stored_correlation_pairs_are_the_ones_the_metric_compares() -> None:
    rng = np.random.default_rng(3)
    d = 22
    tril = np.tril(rng.normal(size=(d, d)))
    reference = rng.standard_normal((3000, d)) @ tril.T
    samples = 0.5 * reference[:2000] + rng.standard_normal((2000, d)) @ tril.T
    stored = compared_pairs(samples, reference)
    metric = correlation_comparison(samples, reference)
    pairs = summaries.CorrelationPairs(
        stored["corr_reference"],
        stored["corr_samples"],
        metric["corr_pearson_r"],
        metric["corr_slope"],
        "corr",
    )
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
