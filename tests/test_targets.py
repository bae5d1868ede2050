"""Analytic targets: scores, exact samplers, normalisation, settings and dtypes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from sivi_engine.registry import UnknownNameError
from sivi_engine.settings import SettingsError
from sivi_engine.targets import TARGETS, make_target
from sivi_engine.targets.base import Target

N_DRAWS = 200_000
#: Allowed deviation in Monte-Carlo standard errors. Draws use a fixed seed, so the tests are
#: deterministic; 5 SE (two-sided normal tail 5.7e-7 per check) keeps a correct sampler from
#: failing for any seed while a moment off by more than ~1% of its spread is caught.
N_SE = 5.0

#: Non-default settings exercised alongside the defaults of every registered target.
VARIANTS = [
    ("gaussian", {"dim": 5, "random_covariance": True, "seed": 3}),
    ("gaussian", {"dim": 3, "correlation": -0.4, "mean": 1.5}),
    ("ring8", {"radius": 2.0, "sd": 0.5}),
    ("student_t2d", {"df": 5.0}),
]
#: Targets with an exact sampler and a normalised density; the data targets (logistic
#: regression, diffusion, BNN) are tested in test_data_targets.py.
ANALYTIC = [name for name in TARGETS.names() if TARGETS[name].normalised]
CASES = [(name, {}) for name in ANALYTIC] + VARIANTS
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in o.items()) for name, o in CASES]


def _points(target: Target, n: int, seed: int) -> torch.Tensor:
    """Exact draws plus uniform points over the plotting box (float64)."""
    gen = torch.Generator().manual_seed(seed)
    bounds = torch.tensor(target.plot_bounds(), dtype=torch.float64)
    u = torch.rand(n, target.dim, generator=gen, dtype=torch.float64)
    box = bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])
    return torch.cat([target.sample(n, gen), box])


def _autograd_score(target: Target, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(target.log_prob(x).sum(), x)
    return grad


@pytest.mark.parametrize(("name", "overrides"), CASES, ids=CASE_IDS)
def test_score_matches_autograd(name: str, overrides: dict) -> None:
    target = make_target(name, overrides)
    x = _points(target, 256, seed=1)
    # Both sides evaluate the same closed form in float64 and differ only by rounding order;
    # scores on these points are at most ~1e3 in size, so 1e-10 is still ~1e3 ulps of slack.
    torch.testing.assert_close(target.score(x), _autograd_score(target, x), rtol=1e-10, atol=1e-10)


def _gaussian_random_covariance(dim: int, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).normal(size=(dim, dim))
    return w @ w.T / dim + 0.5 * np.eye(dim)


#: Closed-form (mean, covariance) of each target with finite second moments.
#: banana: y ~ N(0, [[1, .9], [.9, 1]]), x = (y1, y2 - y1² - 1): E x2 = -1 - 1 = -2,
#:   Cov(x1, x2) = Cov(y1, y2) - E y1³ = 0.9, Var x2 = Var y2 + Var y1² - 2 E[y2 y1²] = 1 + 2 - 0.
#: banana_sivi: E x2 = E x1²/4 = 1, Var x2 = 1 + Var(x1²)/16 = 1 + 2·2⁴/16 = 3, Cov = E x1³/4 = 0.
#: mixtures: μ = Σ w_k μ_k and Σ = Σ w_k (Σ_k + μ_k μ_kᵀ) - μ μᵀ, worked out by hand:
#:   x_shaped: Σ = ½(Σ₊ + Σ₋) = 2I; multimodal: I + diag(4, 0);
#:   multimodal4: μ = (½, -½), E μ_k μ_kᵀ = [[4, -2], [-2, 4]], Σ = I + that - μμᵀ;
#:   ring8: Σ = sd² I + r²/2 I (Σ_k cos² = 4 over the 8 angles); gmm1d: μ = 0.8, Σ = 1 + 4 - 0.64.
MOMENTS = {
    "banana": ([0.0, -2.0], [[1.0, 0.9], [0.9, 3.0]]),
    "banana_sivi": ([0.0, 1.0], [[4.0, 0.0], [0.0, 3.0]]),
    "x_shaped": ([0.0, 0.0], [[2.0, 0.0], [0.0, 2.0]]),
    "multimodal": ([0.0, 0.0], [[5.0, 0.0], [0.0, 1.0]]),
    "multimodal4": ([0.5, -0.5], [[4.75, -1.75], [-1.75, 4.75]]),
    "ring8": ([0.0, 0.0], [[4.59, 0.0], [0.0, 4.59]]),
    "ring8-radius=2.0-sd=0.5": ([0.0, 0.0], [[2.25, 0.0], [0.0, 2.25]]),
    "gmm1d": ([0.8], [[4.36]]),
    "gaussian": ([0.0, 0.0], [[1.0, 0.8], [0.8, 1.0]]),
    "gaussian-dim=3-correlation=-0.4-mean=1.5": (
        [1.5] * 3,
        [[1.0, -0.4, -0.4], [-0.4, 1.0, -0.4], [-0.4, -0.4, 1.0]],
    ),
    "gaussian-dim=5-random_covariance=True-seed=3": (
        [0.0] * 5,
        _gaussian_random_covariance(5, 3),
    ),
}


@pytest.mark.parametrize(("name", "overrides"), CASES, ids=CASE_IDS)
def test_sampler_reproducible(name: str, overrides: dict) -> None:
    target = make_target(name, overrides)
    draws = [target.sample(100, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert draws[0].dtype == torch.float64 and draws[0].shape == (100, target.dim)
    assert torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("case", sorted(MOMENTS))
def test_exact_draws_match_moments(case: str) -> None:
    name, overrides = CASES[CASE_IDS.index(case)]
    mean, cov = (np.asarray(m, dtype=np.float64) for m in MOMENTS[case])
    x = make_target(name, overrides).sample(N_DRAWS, torch.Generator().manual_seed(11)).numpy()
    n = len(x)
    # Standard error of the sample mean is sqrt(Σ_ii / n) with the exact Σ.
    assert np.all(np.abs(x.mean(0) - mean) <= N_SE * np.sqrt(np.diag(cov) / n))
    # Standard error of a sample covariance entry: sd of (x_i - x̄_i)(x_j - x̄_j) over sqrt(n),
    # the sd estimated from the same draws (fourth moments have no short closed form here).
    centred = x - x.mean(0)
    products = centred[:, :, None] * centred[:, None, :]
    se_cov = products.std(0) / math.sqrt(n)
    assert np.all(np.abs(products.mean(0) - cov) <= N_SE * se_cov)


def test_gaussian_exposes_mean_and_covariance() -> None:
    target = make_target("gaussian", {"dim": 4, "random_covariance": True, "seed": 2, "mean": 1.0})
    np.testing.assert_array_equal(target.mean_vector(), np.ones(4))
    # Same numpy recipe on both sides; only summation order could differ.
    np.testing.assert_allclose(target.covariance(), _gaussian_random_covariance(4, 2), rtol=1e-14)


def test_mixture_components() -> None:
    target = make_target("multimodal4")
    np.testing.assert_array_equal(target.component_weights(), [0.125, 0.125, 0.5, 0.25])
    np.testing.assert_array_equal(target.component_means(), [[2, 2], [-2, -2], [2, -2], [-2, 2]])
    ring = make_target("ring8")
    # Centres on the circle of radius 3 at angles 2πk/8; cos/sin are exact to a few ulps.
    np.testing.assert_allclose(np.linalg.norm(ring.component_means(), axis=1), 3.0, rtol=1e-14)


def test_student_t2d_draws() -> None:
    """df = 2 has infinite variance: check the median, and the law of t = A⁻¹x."""
    target = make_target("student_t2d")
    x = target.sample(N_DRAWS, torch.Generator().manual_seed(13)).numpy()
    t = x @ np.linalg.inv(target.mixing_matrix()).T
    n = len(x)
    # p(x) = p(-x), so the median of each coordinate is 0: P(x_i > 0) = ½, binomial SE ½/√n.
    assert np.all(np.abs((x > 0).mean(0) - 0.5) <= N_SE * 0.5 / math.sqrt(n))
    # t_i iid t₂: P(|t_i| < 1) = 2F(1) - 1 = 1/√3, and P(|t_1| < 1, |t_2| < 1) = 1/3.
    p_one = 2 * stats.t.cdf(1.0, df=2) - 1
    assert p_one == pytest.approx(1 / math.sqrt(3), rel=1e-12)
    inside = np.abs(t) < 1
    fractions = [inside[:, 0].mean(), inside[:, 1].mean(), inside.all(1).mean()]
    for frac, p in zip(fractions, [p_one, p_one, p_one**2]):
        assert abs(frac - p) <= N_SE * math.sqrt(p * (1 - p) / n)  # binomial SE


def _grid_integral(target: Target, n: int = 401) -> float:
    """Trapezoid rule for ∫ p over the plotting box on an n-point-per-axis grid."""
    axes = [torch.linspace(lo, hi, n, dtype=torch.float64) for lo, hi in target.plot_bounds()]
    mesh = torch.stack([g.reshape(-1) for g in torch.meshgrid(*axes, indexing="ij")], dim=1)
    density = target.log_prob(mesh).exp().reshape([n] * target.dim)
    for axis in reversed(axes):
        density = torch.trapezoid(density, axis, dim=-1)
    return float(density)


def _banana_box_mass(
    target: Target, cond_mean: Callable[[float], float], cond_sd: float, sd1: float
) -> float:
    """P(box) = ∫ N(x1; 0, sd1²) P(x2 ∈ [c, d] | x1) dx1, x2 | x1 Gaussian."""
    (a, b), (c, d) = target.plot_bounds()

    def integrand(x1: float) -> float:
        m = cond_mean(x1)
        cond = special.ndtr((d - m) / cond_sd) - special.ndtr((c - m) / cond_sd)
        return stats.norm.pdf(x1, scale=sd1) * cond

    return integrate.quad(integrand, a, b, epsabs=1e-13, limit=200)[0]


def _student_box_mass(target: Target) -> float:
    """P(A t ∈ box) = ∫ t_ν(t1) P(t2 ∈ I(t1)) dt1, I(t1) the t2-interval the box allows."""
    df = target.settings.df
    a = target.mixing_matrix()
    half = np.array([hi for _, hi in target.plot_bounds()])  # the box is symmetric

    def integrand(t1: float) -> float:
        # |a_i1 t1 + a_i2 t2| <= half_i for i = 1, 2: intersect two t2-intervals.
        ends = np.sort(np.stack([-half - a[:, 0] * t1, half - a[:, 0] * t1]) / a[:, 1], axis=0)
        lo, hi = ends[0].max(), ends[1].min()
        return stats.t.pdf(t1, df) * max(0.0, special.stdtr(df, hi) - special.stdtr(df, lo))

    # The integrand has kinks where the line t1 = const passes a vertex of the box's image.
    corners = np.array([[sx, sy] for sx in (-1, 1) for sy in (-1, 1)]) * half
    vertices_t1 = np.sort((corners @ np.linalg.inv(a).T)[:, 0])
    pieces = zip(vertices_t1[:-1], vertices_t1[1:])
    return sum(integrate.quad(integrand, lo, hi, epsabs=1e-13, limit=200)[0] for lo, hi in pieces)


def _mass_in_box(name: str, target: Target) -> tuple[float, float]:
    """Mass of the plotting box and the slack that bounds its error."""
    if name == "banana":
        return _banana_box_mass(target, lambda x1: 0.9 * x1 - x1**2 - 1, math.sqrt(0.19), 1.0), 0.0
    if name == "banana_sivi":
        return _banana_box_mass(target, lambda x1: x1**2 / 4, 1.0, 2.0), 0.0
    if name == "student_t2d":
        return _student_box_mass(target), 0.0
    if name == "student_t1d":
        # The box is the central 1 − 2·TAIL_1D interval of t_ν; the Cauchy's peak is sharper
        # than the other targets' on this wide box: trapezoid error 2.1e-7 at 401 points
        # (−(h²/12)·[p'] over the box), so 2e-7 more slack.
        return 1 - 2 * stats.t.sf(target.plot_bounds()[0][1], target.settings.df), 2e-7
    # Mixtures: the box reaches 5 sd past every component in every coordinate, so by a union
    # bound at most d · 2Φ(-5) of each component (hence of the mixture) lies outside.
    return 1.0, target.dim * 2 * stats.norm.sf(5.0)


#: Grid quadrature is only feasible in one and two dimensions.
LOW_DIMENSIONAL = [name for name in ANALYTIC if make_target(name).dim <= 2]


@pytest.mark.parametrize("name", LOW_DIMENSIONAL)
def test_density_normalised(name: str) -> None:
    target = make_target(name)
    assert target.normalised
    expected, slack = _mass_in_box(name, target)
    # Trapezoid error on the 401-point grid, estimated by refining to 801/1601 points
    # (error ∝ h²), is below 1e-7 for every target; 2e-7 adds margin.
    quadrature = 2e-7
    assert expected - slack - quadrature <= _grid_integral(target) <= expected + quadrature


def test_student_box_holds_99_percent() -> None:
    # The box bound guarantees at least (1 - 2·0.0025)² of the mass.
    assert _student_box_mass(make_target("student_t2d")) >= (1 - 2 * 0.0025) ** 2


def test_ring8_rejects_nonpositive_radius() -> None:
    with pytest.raises(SettingsError, match="radius"):
        make_target("ring8", {"radius": -1})
    with pytest.raises(SettingsError, match="sd"):
        make_target("ring8", {"sd": 0})


def test_invalid_settings_name_the_field() -> None:
    with pytest.raises(SettingsError, match="correlation"):
        make_target("gaussian", {"dim": 3, "correlation": -0.6})  # needs ρ > -1/2
    with pytest.raises(SettingsError, match="df"):
        make_target("student_t2d", {"df": 0.0})


def test_unknown_target_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        make_target("nope")
    assert all(name in str(err.value) for name in TARGETS.names())


@pytest.mark.parametrize(("name", "overrides"), CASES, ids=CASE_IDS)
def test_float32_keeps_dtype(name: str, overrides: dict) -> None:
    target = make_target(name, overrides)
    x64 = _points(target, 256, seed=5)
    x32 = x64.float()
    log_prob, score = target.log_prob(x32), target.score(x32)
    assert log_prob.dtype == torch.float32 and score.dtype == torch.float32
    # Compare with float64 at the same (float32-rounded) points. float32 unit roundoff is 6e-8;
    # cancellation amplifies it by at most ~1e2 here (precision eigenvalues up to 1/(1 - 0.9²)
    # ≈ 5.3 times squared coordinates up to ~20 in the banana's x2 + x1² + 1 and the quadratic
    # forms), so 1e-5 relative holds; atol covers values that cancel to near zero.
    ref = x32.double()
    torch.testing.assert_close(log_prob.double(), target.log_prob(ref), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(score.double(), target.score(ref), rtol=1e-5, atol=1e-4)


def test_default_autograd_score_keeps_the_graph_of_a_reparameterised_draw():
    """A target without an analytic score: the autograd score of a draw x(θ) must stay
    differentiable in θ, so KSD-type losses get their ∇²log p term. For p = N(0, 1) in 1-D
    written without an analytic score, s(x) = −x, and d/dθ Σ s(θ·u) = −Σ u."""
    from sivi_engine.targets.base import Target

    class Quadratic(Target):
        name = "quadratic"

        @property
        def dim(self) -> int:
            return 1

        def log_prob(self, x):
            return -0.5 * (x**2).sum(-1)

    theta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    u = torch.linspace(0.1, 1, 5, dtype=torch.float64).unsqueeze(1)
    score = Quadratic().score(theta * u)
    (grad,) = torch.autograd.grad(score.sum(), theta)
    assert grad.item() == pytest.approx(-u.sum().item())
    assert Quadratic().score(u).requires_grad is False  # plain tensors stay plain
