"""The headline discrepancies (sliced Wasserstein, multi-scale MMD²): closed forms, and that no
headline metric rewards a wrong answer in 22-D (issue 16, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metric_fixtures import DESCRIBE

from sivi_engine.metrics import EvaluationContext, EvaluationSettings, evaluate_all, mmd_squared
from sivi_engine.metrics.curves import hold_out_floor_draws, noise_floor
from sivi_engine.metrics.sliced_wasserstein import sliced_wasserstein, wasserstein_1d
from sivi_engine.targets import make_target


@pytest.mark.parametrize("p", [1, 2])
def test_wasserstein_1d_by_hand(p: int) -> None:
    # u = {0, 1}, v = {0, 1, 2}: the quantile functions differ by 1 on (1/3, 1/2] and (2/3, 1]
    u, v = np.array([[1.0, 0.0]]), np.array([[2.0, 0.0, 1.0]])
    assert wasserstein_1d(u, v, p)[0] == pytest.approx(1 / 6 + 1 / 3)
    # equal sizes: the mean |difference|^p of the sorted samples
    u, v = np.array([[3.0, 1.0, 2.0]]), np.array([[0.0, 5.0, 1.0]])
    assert wasserstein_1d(u, v, p)[0] == pytest.approx((1 + 1 + 2**p) / 3)


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_sliced_wasserstein_of_a_scaled_gaussian(scale: float) -> None:
    """N(0, s² D) against N(0, D), D diagonal with sds from 0.1 to 3: in reference sds both are
    standard, so SW₁ = √(2/π)·|1 − s| and SW₂ = |1 − s| (the function's docstring). 20 000
    draws a side: the empirical W of each projection is off by O(n^-½) ≈ 0.01, so 0.03 is a
    3-sigma bound."""
    rng = np.random.default_rng(3)
    sds = np.array([0.1, 1, 3, 1, 0.5])
    y = rng.standard_normal((20000, 5)) * sds
    x = scale * rng.standard_normal((20000, 5)) * sds
    expected = abs(1 - scale)
    assert sliced_wasserstein(x, y, p=2) == pytest.approx(expected, abs=0.03)
    assert sliced_wasserstein(x, y) == pytest.approx(np.sqrt(2 / np.pi) * expected, abs=0.03)


def test_multiscale_mmd_is_the_mean_of_single_bandwidth_ones() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.3, 1, (300, 3)), rng.normal(0, 1.2, (400, 3))
    singles = [mmd_squared(x, y, ell) for ell in (0.5, 1.0, 2.0)]
    assert mmd_squared(x, y, [0.5, 1.0, 2.0]) == pytest.approx(np.mean(singles), rel=1e-12)


def perturbations(exact: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Wrong answers built from exact draws: sds 0.7× and 1.4× the truth about the reference
    mean, every mean 0.5 sd off, and one coordinate's mean 0.5 sd off."""
    mean, sd = reference.mean(axis=0), reference.std(axis=0)
    one = np.zeros(reference.shape[1])
    one[0] = 0.5
    return {
        "sd x0.7": mean + 0.7 * (exact - mean),
        "sd x1.4": mean + 1.4 * (exact - mean),
        "mean +0.5 sd": exact + 0.5 * sd,
        "one mean +0.5 sd": exact + one * sd,
    }


#: Replicates of exact draws that measure the Monte-Carlo error.
REPLICATES = 8


def headline(points: np.ndarray, reference: np.ndarray, target, settings) -> dict[str, float]:
    scores = evaluate_all(EvaluationContext(points, reference, target, settings))
    return {name: scores[name] for name in HEADLINE_METRICS if name in scores}


#: The metrics the report's headline shows, as the metric catalogue declares them.
HEADLINE_METRICS = [
    name for name, info in DESCRIBE.merged.named.items() if "headline" in dict(info.roles)
]


def assert_headline_detects(
    target, reference_pool: np.ndarray, n: int, cases: tuple[str, ...] | None = None
) -> None:
    """Exact draws score within Monte-Carlo error of the reference's noise floor, and every
    perturbation (those named in ``cases``, default all) scores worse than exact draws on every
    headline metric, for ``n`` draws scored against what ``hold_out_floor_draws`` leaves (as
    the evaluation step does)."""
    settings = EvaluationSettings(max_points_mmd=2000)
    floor_draws, against = hold_out_floor_draws(reference_pool[REPLICATES * n :], n, settings)
    floor = noise_floor(floor_draws, against, target, settings)
    replicates = [  # exact draws, disjoint from the floor's and the reference
        headline(draws, against, target, settings)
        for draws in np.split(reference_pool[: REPLICATES * n], REPLICATES)
    ]
    names = list(replicates[0])
    assert {"mmd2", "mmd2_multiscale", "sliced_w1"} <= set(names)
    exact = {name: np.array([r[name] for r in replicates]) for name in names}
    for name in names:
        # the floor is one more exact replicate: within 5 replicate sds of their mean (the sd
        # of 8 replicates can come out at half the true one; + a resolution for MMD², whose
        # scatter around 0 is itself the Monte-Carlo error)
        spread = 5 * exact[name].std(ddof=1) + 1e-4
        assert abs(floor[f"floor_{name}"] - exact[name].mean()) <= spread, name
    worst_exact = {name: exact[name].max() for name in names}
    for case, points in perturbations(floor_draws, against).items():
        if cases is not None and case not in cases:
            continue
        scores = headline(points, against, target, settings)
        for name in names:
            assert scores[name] > worst_exact[name], (case, name, scores[name], worst_exact[name])


def test_headline_metrics_in_22_dimensions() -> None:
    """A dense 22-D Gaussian (the waveform posterior's dimension), 1000 draws as the default
    config scores, 10 000 reference draws."""
    target = make_target("gaussian", {"dim": 22, "random_covariance": True, "seed": 5})
    mean, covariance = target.mean_vector(), target.covariance()
    pool = np.random.default_rng(6).multivariate_normal(mean, covariance, size=19000)
    assert_headline_detects(target, pool, 1000)


def test_headline_metrics_in_2_dimensions() -> None:
    """banana, normalised: the density KL joins the headline."""
    target = make_target("banana")
    pool = target.sample(19000, torch.Generator().manual_seed(7)).numpy()
    assert_headline_detects(target, pool, 1000)
