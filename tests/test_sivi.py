"""SIVI (Yin & Zhou 2018) and the ELBO sandwich of a semi-implicit q (Molchanov et al. 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sivi_engine.families.semi_implicit import (
    SemiImplicitGaussian,
    elbo_sandwich,
    pairwise_conditional_log_prob,
)
from sivi_engine.methods import METHODS
from sivi_engine.methods.ksivi import KSIVI, KSIVISettings
from sivi_engine.methods.semi_implicit_common import build_family
from sivi_engine.methods.sivi import SIVI, SIVISettings, log_mixture_estimate
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError, resolve
from sivi_engine.targets import make_target

KS = (10, 100, 1000)
REPLICATES = 20


def test_pairwise_conditional_log_prob_matches_torch_distributions():
    """The inner-product expansion equals log N(xᵢ; μ_k, diag σ²) from torch.distributions, value
    and gradients, to float64 round-off (1e-12)."""
    gen = torch.Generator().manual_seed(0)
    x = (3.0 + torch.randn(7, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    means = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    log_sigma = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    inputs = [x, means, log_sigma]
    sigma = log_sigma.exp()
    normaliser = -log_sigma.sum() - 1.5 * math.log(2 * math.pi)
    fast = pairwise_conditional_log_prob(x, means, lambda v: v / sigma, normaliser)
    plain = torch.distributions.Normal(means, log_sigma.exp()).log_prob(x[:, None]).sum(-1)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    fast_grads = torch.autograd.grad(fast.sum(), inputs)
    for a, b in zip(fast_grads, torch.autograd.grad(plain.sum(), inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_full_covariance_conditional_matches_torch_distributions():
    """With ``full_covariance`` the conditional is N(μ(z), LLᵀ): the draws' own and pairwise
    log-densities equal MultivariateNormal(μ, scale_tril=L), and the conditional score equals
    autograd's ∇ₓ of that log-density, to float64 round-off."""
    torch.manual_seed(0)
    q = SemiImplicitGaussian(3, 2, hidden=(4,), init_sigma=0.7, full_covariance=True).double()
    with torch.no_grad():
        q.lower.copy_(torch.randn(3, 3, dtype=torch.float64))
        q.log_sigma.copy_(torch.tensor([-0.3, 0.2, 0.5], dtype=torch.float64))
    tril = q.scale_tril()
    assert torch.count_nonzero(torch.triu(tril, diagonal=1)) == 0
    torch.manual_seed(1)
    draw = q.mixture_draws(6, 5)
    torch.manual_seed(1)  # the same n + k mixing draws, so the same means
    means = q.mean(torch.randn(11, 2, dtype=torch.float64))
    exact = torch.distributions.MultivariateNormal(means[:, None], scale_tril=tril)
    pairs = exact.log_prob(draw.x[None]).T  # (n, n + k)
    torch.testing.assert_close(draw.own, pairs[:, :6].diagonal(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(draw.others, pairs[:, 6:], rtol=1e-12, atol=1e-12)
    torch.manual_seed(2)
    sample = q.rsample(4)
    x = sample.x.detach().requires_grad_()
    log_q = torch.distributions.MultivariateNormal(q.mean(sample.z), scale_tril=tril).log_prob(x)
    (score,) = torch.autograd.grad(log_q.sum(), x)
    torch.testing.assert_close(sample.conditional_score, score, rtol=1e-10, atol=1e-12)


def test_uivi_refuses_the_full_covariance_conditional():
    with pytest.raises(SettingsError, match="'covariance'.*allowed: diagonal"):
        resolve(METHODS["uivi"].Settings, {"covariance": "full"})
    with pytest.raises(SettingsError, match="one of diagonal, full"):
        resolve(METHODS["sivi"].Settings, {"covariance": "dense"})


def linear_semi_implicit(a: torch.Tensor, sigma: float) -> SemiImplicitGaussian:
    """x = A z + σ ε with z ~ N(0, I): q = N(0, A Aᵀ + σ² I) in closed form."""
    q = SemiImplicitGaussian(a.shape[0], a.shape[1], hidden=(), init_sigma=sigma)
    (linear,) = q.mean_net
    with torch.no_grad():
        linear.weight.copy_(a)
        linear.bias.zero_()
    return q


def gaussian_kl(cov_q: np.ndarray, cov_p: np.ndarray) -> float:
    """KL(N(0, Σ_q) ‖ N(0, Σ_p)) = ½ [tr(Σ_p⁻¹ Σ_q) − d + log det Σ_p − log det Σ_q]."""
    d = cov_q.shape[0]
    trace = np.trace(np.linalg.solve(cov_p, cov_q))
    return 0.5 * (trace - d + np.linalg.slogdet(cov_p)[1] - np.linalg.slogdet(cov_q)[1])


def standard_error(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / math.sqrt(values.size))


def mixing_matrices(cov_p: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """(A, σ) with A Aᵀ + σ² I = Σ_p (q = p, KL 0), and a q ≠ p (KL(q‖p) ≈ 0.152)."""
    return {
        "q_equals_p": (np.linalg.cholesky(cov_p - 0.4**2 * np.eye(2)), 0.4),
        "q_differs_from_p": (np.array([[1.0, 0.0], [0.8, 0.5]]), 0.5),
    }


@pytest.mark.parametrize("case", ["q_equals_p", "q_differs_from_p"])
def test_elbo_sandwich_brackets_the_closed_form_elbo(case):
    """q = N(0, A Aᵀ + σ² I) written as a semi-implicit q, p = N(0, [[1, .8], [.8, 1]]), so
    ELBO = −KL(q‖p) is closed form. 20 replicates of the sandwich (seeds 0-19) give means and
    standard errors; every tolerance below is 4 standard errors unless stated.

    - L_K ≤ ELBO ≤ U_K for K = 10, 100, 1000. Swapping the roles of z₀ (L without it, U with it)
      breaks this at K = 10 by 0.23-0.52, i.e. ≥ 7 standard errors.
    - L_K strictly increases and U_K strictly decreases in K: nested prefixes of the mixing draws
      make the differences paired; measured steps are ≥ 6.5 paired standard errors, the test
      asks for > 3.
    - L_1000 and U_1000 are within 0.01 + 4 standard errors of the ELBO: their bias, measured with
      100 replicates, is ≤ 0.007 for both cases (|bias| ~ 1/K).
    """
    target = make_target("gaussian", {"correlation": 0.8})
    cov_p = target.covariance()
    a, sigma = mixing_matrices(cov_p)[case]
    q = linear_semi_implicit(torch.as_tensor(a, dtype=torch.float32), sigma)
    elbo = -gaussian_kl(a @ a.T + sigma**2 * np.eye(2), cov_p)

    runs = []
    for seed in range(REPLICATES):
        torch.manual_seed(seed)
        runs.append(elbo_sandwich(q, target, ks=KS))
    bounds = {key: np.array([run[key] for run in runs]) for key in runs[0]}
    assert set(bounds) == {f"elbo_{side}_k{k}" for side in ("lower", "upper") for k in KS}

    for k in KS:
        lower, upper = bounds[f"elbo_lower_k{k}"], bounds[f"elbo_upper_k{k}"]
        assert lower.mean() <= elbo + 4 * standard_error(lower), k
        assert upper.mean() >= elbo - 4 * standard_error(upper), k
    for small, large in zip(KS, KS[1:]):
        gain = bounds[f"elbo_lower_k{large}"] - bounds[f"elbo_lower_k{small}"]
        drop = bounds[f"elbo_upper_k{small}"] - bounds[f"elbo_upper_k{large}"]
        assert gain.mean() > 3 * standard_error(gain), (small, large)
        assert drop.mean() > 3 * standard_error(drop), (small, large)
    for side in ("lower", "upper"):
        values = bounds[f"elbo_{side}_k1000"]
        assert abs(values.mean() - elbo) <= 0.01 + 4 * standard_error(values), side


RECOVERY_CASES = {
    # Seeds 0-4 at these settings: mean error ≤ 0.045, covariance error ≤ 0.051 and the KL upper
    # bound −L_1000 ≤ 0.007; tolerances are about twice the worst seed. A fit that ignores the
    # correlation misses Σ₁₂ by 0.8; the best mean-field Gaussian has KL(q‖p) = 0.51.
    "correlated_2d": ({"correlation": 0.8}, {}, 0.1, 0.1, 0.05),
    # z_dim = d lets μ(z) + σε express a dense covariance (z_dim 3 leaves the factor-analysis
    # family rank 3 + diagonal). Seeds 0-4: mean error ≤ 0.044, covariance error 0.13-0.19,
    # −L_1000 ≤ 0.11. Most of the covariance error is SIVI's known finite-K bias: with K = 100
    # the surrogate under-estimates the entropy and the variances shrink by 0.02-0.16 (at
    # K = 1000 the shrinkage all but vanishes); the tolerance 0.3 allows for it. Ignoring the
    # correlations misses by up to 0.72; the best mean-field Gaussian has KL(q‖p) = 0.83.
    "dense_10d": ({"dim": 10, "random_covariance": True}, {"z_dim": 10}, 0.1, 0.3, 0.25),
}


@pytest.mark.parametrize("case", RECOVERY_CASES)
def test_sivi_recovers_gaussian_mean_and_covariance(case):
    """SIVI with K = 100 at 1000 steps of batch 200 (lr 5e-3 halved every 300 steps), 10,000
    draws (Monte-Carlo error of the moments ~0.01-0.03). Also checks the fit through its own
    diagnostic: −L_1000, an upper bound on KL(q‖p) in expectation, is small."""
    target_settings, overrides, mean_tol, cov_tol, kl_tol = RECOVERY_CASES[case]
    torch.manual_seed(0)
    target = make_target("gaussian", target_settings)
    settings = resolve(
        SIVISettings,
        {
            "iterations": 1000,
            "batch_size": 200,
            "lr": 5e-3,
            "lr_decay": 0.5,
            "lr_decay_every": 300,
            **overrides,
        },
    )
    result = SIVI().fit(target, settings, torch.device("cpu"))
    draws = result.samples.double().numpy()
    assert result.trace.status == "ok"
    np.testing.assert_allclose(draws.mean(0), target.mean_vector(), atol=mean_tol)
    np.testing.assert_allclose(np.cov(draws.T), target.covariance(), atol=cov_tol)
    assert -result.diagnostics["elbo_lower_k1000"] <= kl_tol


def test_ksivi_reports_the_elbo_sandwich():
    """KSIVI's fit carries the sandwich: all keys, finite, L_K ≤ U_K for each K.

    U_K − L_K = mean log(1 + (rᵢ − 1)/(K + 1)), rᵢ = q(xᵢ | z₀ᵢ) over the mean of the q(xᵢ | z_k):
    the own component is the denser one on average because xᵢ was drawn from it; across seeds 0-4
    after 200 steps the gap is positive for every K (≥ 1.8e-4 at K = 1000, ≥ 0.02 at K = 10).
    """
    torch.manual_seed(0)
    target = make_target("gaussian", {"correlation": 0.8})
    settings = resolve(
        KSIVISettings, {"iterations": 200, "batch_size": 100, "lr": 3e-3, "num_draws": 100}
    )
    diagnostics = KSIVI().fit(target, settings, torch.device("cpu")).diagnostics
    assert set(diagnostics) == {f"elbo_{side}_k{k}" for side in ("lower", "upper") for k in KS}
    assert all(math.isfinite(value) for value in diagnostics.values())
    for k in KS:
        assert diagnostics[f"elbo_lower_k{k}"] <= diagnostics[f"elbo_upper_k{k}"], k


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_fixed_sigma_stays_fixed_while_training(learn_sigma):
    """SIVI's 2-D script fixes σ = 0.1 (``learn_sigma: false``): log σ is then a buffer, outside
    the optimised parameters, and 100 SIVI steps on N(0, [[1, .8], [.8, 1]]) leave σ bit for bit
    unchanged; learned, the same steps move it from 0.1 to 0.21 and 0.20 (seed 0), far above the
    0.01 change the test asks for. Also SIVI.fit runs at the script's other settings (z_dim 10,
    MLP 10→40→60→40→2, 40 draws per step, K = 100)."""
    torch.manual_seed(0)
    target = make_target("gaussian", {"correlation": 0.8})
    settings = resolve(
        SIVISettings,
        {
            "z_dim": 10,
            "hidden": [40, 60, 40],
            "init_sigma": 0.1,
            "learn_sigma": learn_sigma,
            "batch_size": 40,
            "iterations": 100,
            "lr": 1e-2,
            "num_draws": 100,
        },
    )
    q = build_family(target.dim, settings, torch.device("cpu"))
    assert any(p is q.log_sigma for p in q.parameters()) == learn_sigma

    def loss(step: int) -> torch.Tensor:
        draw = q.mixture_draws(settings.batch_size, settings.mixing_draws)
        return (log_mixture_estimate(draw.own, draw.others) - target.log_prob(draw.x)).mean()

    initial = q.sigma().detach().clone()
    optimise(loss, q.parameters(), settings)
    moved = (q.sigma().detach() - initial).abs().max().item()
    if learn_sigma:
        assert moved > 0.01
    else:
        assert moved == 0.0
        result = SIVI().fit(target, settings, torch.device("cpu"))
        assert result.trace.status == "ok" and result.samples.shape == (100, 2)
