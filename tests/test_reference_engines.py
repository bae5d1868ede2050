"""MCMC reference engines: diagnostics against known cases, Stan NUTS and SGLD against the
closed-form posterior of a conjugate linear regression, and the diagnostics gate.

The Stan program is compiled once per machine (httpstan caches it by program text under
$SIVI_STAN_CACHE or ~/.cache/httpstan); the module-scoped fixture samples it once per session.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from sivi_engine import artifacts, cli
from sivi_engine.reference import ENGINES
from sivi_engine.reference import diagnostics as dg
from sivi_engine.reference.diagnostics import DiagnosticsGateError
from sivi_engine.reference.sgld import SgldSettings
from sivi_engine.reference.stan import CACHE_ENV, cache_root, cmdstan_found, resolve_backend
from sivi_engine.settings import SettingsError, resolve
from sivi_engine.steps.reference import reference
from sivi_engine.targets import make_target
from sivi_engine.targets.linear_regression import LinearRegression

TARGET = "linreg_conjugate"
#: Monte-Carlo standard errors allowed between an estimate and its exact value (the issue's
#: criterion). With 5 means and 15 covariance entries per run, a correct sampler exceeds it
#: with probability ≈ 20 · 6e-5 ≈ 1e-3; the seeds are fixed, so the tests are deterministic.
MCSE_TOLERANCE = 4.0


# ---------------------------------------------------------------------------------------------
# diagnostics on known cases


def ar1_chains(seed: int, chains: int, draws: int, params: int, phi: float) -> np.ndarray:
    """Stationary AR(1) chains xₜ = φ xₜ₋₁ + sqrt(1 − φ²) εₜ: unit variance, and an integrated
    autocorrelation time (1 + φ)/(1 − φ), so ESS = S (1 − φ)/(1 + φ)."""
    rng = np.random.default_rng(seed)
    innovations = rng.standard_normal((chains, draws, params)) * np.sqrt(1 - phi**2)
    x = np.empty((chains, draws, params))
    x[:, 0] = rng.standard_normal((chains, params))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + innovations[:, t]
    return x


def ess_loop(x: np.ndarray) -> float:
    """Line-by-line transcription of ``ess_rfun`` of Stan's R interface / ``posterior``
    (Vehtari et al. 2021, appendix code) for one parameter, x shaped (chain, draw)."""
    chains, n = x.shape
    acov = np.array(
        [[np.sum((c[: n - t] - c.mean()) * (c[t:] - c.mean())) / n for t in range(n)] for c in x]
    )  # biased autocovariance (Geyer 1992)
    mean_var = acov[:, 0].mean() * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + (x.mean(axis=1).var(ddof=1) if chains > 1 else 0.0)
    rho = np.zeros(n)
    t = 0
    rho_even, rho_odd = 1.0, 1 - (mean_var - acov[:, 1].mean()) / var_plus
    rho[0], rho[1] = rho_even, rho_odd
    while t < n - 5 and rho_even + rho_odd > 0:
        t += 2
        rho_even = 1 - (mean_var - acov[:, t].mean()) / var_plus
        rho_odd = 1 - (mean_var - acov[:, t + 1].mean()) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t], rho[t + 1] = rho_even, rho_odd
    max_t = t
    if rho_even > 0:
        rho[max_t] = rho_even
    t = 0
    while t <= max_t - 4:
        t += 2
        if rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]:
            rho[t] = rho[t + 1] = (rho[t - 2] + rho[t - 1]) / 2
    tau = max(-1 + 2 * rho[:max_t].sum() + rho[max_t], 1 / np.log10(chains * n))
    return chains * n / tau


@pytest.mark.parametrize("phi", [0.0, 0.6, 0.95, -0.4])
def test_vectorised_ess_equals_the_reference_loop(phi):
    # Same algorithm, so agreement to rounding error (1e-9 relative); φ < 0 exercises the
    # antithetic branch (ρ̂ at the truncation lag), φ = 0.95 a long positive sequence.
    x = ar1_chains(seed=3, chains=3, draws=300, params=2, phi=phi)
    expected = [ess_loop(x[:, :, p]) for p in range(2)]
    np.testing.assert_allclose(dg.ess(x), expected, rtol=1e-9)


def test_iid_draws_have_rhat_one_and_ess_n():
    x = np.random.default_rng(0).standard_normal((4, 1000, 3))
    n = x.shape[0] * x.shape[1]
    # R̂ − 1 of iid draws is O(1/draws); over 20 seeds of this size max R̂ stayed < 1.003.
    assert dg.split_rhat(x).max() < 1.005
    # ESS estimates of iid draws scatter by ~5% here (observed 0.82–1.08·N over 20 seeds × 3
    # parameters for bulk, tail and mean ESS): ±25% fails any estimator off by a real factor.
    for estimator in (dg.bulk_ess, dg.tail_ess, dg.mean_ess):
        ratio = estimator(x) / n
        assert np.all((ratio > 0.75) & (ratio < 1.25)), (estimator.__name__, ratio)


def test_ess_of_autocorrelated_chains():
    phi = 0.9
    x = ar1_chains(seed=1, chains=4, draws=5000, params=2, phi=phi)
    exact = x.shape[0] * x.shape[1] * (1 - phi) / (1 + phi)
    # ±25%: over 10 seeds the estimate stayed within 0.87–1.18 of the exact value (the
    # truncated autocorrelation sum of 4×5000 draws has ~7% relative sd at τ = 19).
    np.testing.assert_allclose(dg.mean_ess(x), exact, rtol=0.25)
    np.testing.assert_allclose(dg.bulk_ess(x), exact, rtol=0.25)


def test_rhat_flags_chains_that_disagree():
    rng = np.random.default_rng(2)
    shifted = rng.standard_normal((4, 1000, 1)) + 0.5 * np.arange(4)[:, None, None]
    scaled = rng.standard_normal((4, 1000, 1)) * np.array([1.0, 1.0, 1.0, 3.0])[:, None, None]
    # Means 0.5 sd apart: R̂ ≈ sqrt(1 + var(means)) ≈ 1.15 ≫ 1.01.
    assert dg.split_rhat(shifted)[0] > 1.1
    # Equal means, one chain 3× wider: invisible to the bulk R̂, caught by the folded R̂.
    bulk_only = dg.basic_rhat(dg.rank_normalise(dg.split_chains(scaled)))[0]
    assert bulk_only < 1.01
    assert dg.split_rhat(scaled)[0] > 1.05


def test_ebfmi_on_known_energy_sequences():
    alternating = np.tile([0.0, 1.0], (2, 500))
    # Differences ±1 (mean square 1), variance 1/4: E-BFMI = 4 exactly.
    np.testing.assert_allclose(dg.ebfmi(alternating), 4.0)
    iid = np.random.default_rng(4).standard_normal((4, 4000))
    # E(ΔE)² = 2 Var E for iid energies: E-BFMI → 2; sd ≈ 0.03 at 4000 draws.
    np.testing.assert_allclose(dg.ebfmi(iid), 2.0, atol=0.15)
    sticky = ar1_chains(seed=5, chains=4, draws=4000, params=1, phi=0.95)[..., 0]
    # AR(1) energy: E-BFMI → 2(1 − φ) = 0.1, below the 0.2 warning level.
    assert np.all(dg.ebfmi(sticky) < 0.2)


def test_gate_names_each_failing_diagnostic():
    settings = resolve(dg.GatedSettings, {})
    summary = {
        "max_rhat": 1.02,
        "min_bulk_ess": 2000.0,
        "min_tail_ess": float("nan"),
        "divergences": 3,
        "min_ebfmi": 0.5,
    }
    failures = dg.gate_failures(summary, settings)
    assert [f.split(" ")[0] for f in failures] == ["max_rhat", "min_tail_ess", "divergences"]
    with pytest.raises(DiagnosticsGateError, match="max_rhat = 1.02 .needs < rhat_max = 1.01"):
        dg.enforce_gate(summary, settings, "test")
    passing = summary | {"max_rhat": 1.005, "min_tail_ess": 1000.0, "divergences": 0}
    assert dg.gate_record(passing, settings, enforced=True)["passed"]


# ---------------------------------------------------------------------------------------------
# Stan NUTS against the closed form


def assert_matches_gaussian(draws: np.ndarray, mean: np.ndarray, cov: np.ndarray, slack=0.0):
    """Means and covariance entries within MCSE_TOLERANCE Monte-Carlo standard errors (+ slack
    per covariance entry). A covariance entry Σ̂ᵢⱼ is the mean of zᵢⱼ = (xᵢ − x̄ᵢ)(xⱼ − x̄ⱼ),
    so its MCSE is sd(zᵢⱼ)/sqrt(ESS(zᵢⱼ)) from the same ESS estimator as for the means."""
    flat = draws.reshape(-1, draws.shape[-1])
    mean_error = np.abs(flat.mean(axis=0) - mean)
    assert np.all(mean_error < MCSE_TOLERANCE * dg.mcse_mean(draws)), mean_error / dg.mcse_mean(
        draws
    )
    centred = draws - flat.mean(axis=0)
    i, j = np.triu_indices(draws.shape[-1])
    products = centred[..., i] * centred[..., j]
    estimate = products.reshape(-1, len(i)).mean(axis=0)
    cov_error = np.abs(estimate - cov[i, j])
    assert np.all(cov_error < MCSE_TOLERANCE * dg.mcse_mean(products) + slack), (
        cov_error - slack
    ) / dg.mcse_mean(products)


@pytest.fixture(scope="module")
def stan_reference(tmp_path_factory):
    """One pystan run of the default-sized problem (compiles on the first run on a machine)."""
    pytest.importorskip("stan", reason="pystan is not installed")
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler: pystan needs one to build Stan programs")
    out = tmp_path_factory.mktemp("stan") / "reference.zarr"
    reference(TARGET, out, "stan", {"backend": "pystan", "num_draws": 4000, "seed": 1})
    return artifacts.read(out, artifacts.REFERENCE_DRAWS)


def test_stan_matches_closed_form_posterior(stan_reference):
    target = make_target(TARGET)
    assert_matches_gaussian(
        stan_reference.draws.values, target.posterior_mean(), target.posterior_covariance()
    )


def test_stan_artifact_records_engine_gate_and_sample_stats(stan_reference):
    ds = stan_reference
    assert ds.attrs["engine"] == "stan-nuts/pystan"
    diagnostics = json.loads(ds.attrs["diagnostics"])
    assert diagnostics["gate"] == {
        "enforced": True,
        "passed": True,
        "failures": [],
        "thresholds": {"rhat_max": 1.01, "ess_min": 1000.0, "max_divergences": 0, "ebfmi_min": 0.2},
    }
    assert diagnostics["max_rhat"] < 1.01 and diagnostics["min_tail_ess"] >= 1000
    # lp__ and the torch log density are the same float64 function up to a constant.
    assert diagnostics["lp_mismatch"] < 1e-9
    assert ds.draws.shape == (4, 1000, 5)
    stats = ("diverging", "tree_depth", "n_steps", "step_size", "acceptance_rate", "energy", "lp")
    for name in stats:  # ArviZ's names of Stan's sampler statistics
        assert ds[name].dims == ("chain", "draw")
    assert ds.diverging.dtype == bool and ds.tree_depth.dtype == ds.n_steps.dtype == np.int64
    assert ds.diverging.values.sum() == diagnostics["divergences"] == 0
    assert np.all((ds.acceptance_rate.values >= 0) & (ds.acceptance_rate.values <= 1))
    assert np.all(ds.n_steps.values >= 1)
    # Adaptation ends with warmup: each chain keeps one step size for all its kept draws.
    step_size = ds.step_size.values
    assert np.all(step_size > 0) and np.all(step_size == step_size[:, :1])
    # The stored lp is Stan's lp__ of the stored draws: it differs from the target's log
    # density by a constant, draw by draw (float64 rounding of lp ≈ −10: 1e-9 is ample).
    target = make_target(TARGET)
    torch_lp = target.log_prob(torch.as_tensor(ds.draws.values.reshape(-1, 5))).numpy()
    assert np.ptp(ds.lp.values.reshape(-1) - torch_lp) < 1e-9


def test_stan_gate_failure_exits_nonzero_and_writes_nothing(stan_reference, tmp_path, capsys):
    # No warmup: Stan's initial step size 1 is ~10× too large for posterior sds ≈ 0.1, so
    # transitions diverge; 10 draws per chain cannot reach an ESS of 1000.
    out = tmp_path / "bad.zarr"
    code = cli.main(
        [
            "reference",
            "--target",
            TARGET,
            "--engine",
            "stan",
            "--out",
            str(out),
            "--set",
            "backend=pystan",
            "--set",
            "warmup=0",
            "--set",
            "num_draws=40",
        ]
    )
    message = capsys.readouterr().err
    assert code == 2
    assert "failed the diagnostics gate" in message
    assert "min_bulk_ess" in message and "divergences" in message
    assert not out.exists()


class MismatchedData(LinearRegression):
    """The torch posterior of noise sd 1 fed to Stan with noise sd 2: a different model."""

    def stan_data(self):
        return super().stan_data() | {"sigma": 2.0}


def test_stan_rejects_a_program_that_disagrees_with_the_target(stan_reference):
    engine = ENGINES["stan"]()
    settings = resolve(engine.Settings, {"backend": "pystan", "num_draws": 400, "ess_min": 1})
    with pytest.raises(SettingsError, match="disagrees with target"):
        engine.run(MismatchedData(), settings)


def test_stan_settings_reject_uneven_draws():
    with pytest.raises(SettingsError, match="'num_draws' .* multiple of 'chains'"):
        resolve(ENGINES["stan"].Settings, {"num_draws": 10, "chains": 4})


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    assert cache_root() is None


def test_cmdstanpy_backend_matches_closed_form(tmp_path):
    if not cmdstan_found():
        assert resolve_backend("auto") == "pystan"
        with pytest.raises(SettingsError, match="setting 'backend': cmdstanpy needs a CmdStan"):
            resolve_backend("cmdstanpy")
        pytest.skip(
            "NOT RUN: no CmdStan installation (set CMDSTAN or run cmdstanpy.install_cmdstan()); "
            "the cmdstanpy backend was not tested on this machine"
        )
    out = tmp_path / "reference.zarr"
    reference(TARGET, out, "stan", {"backend": "cmdstanpy", "num_draws": 4000, "seed": 1})
    ds = artifacts.read(out, artifacts.REFERENCE_DRAWS)
    assert ds.attrs["engine"] == "stan-nuts/cmdstanpy"
    target = make_target(TARGET)
    assert_matches_gaussian(ds.draws.values, target.posterior_mean(), target.posterior_covariance())


# ---------------------------------------------------------------------------------------------
# SGLD against the closed form


def sgld_covariance(precision: np.ndarray, step: float) -> np.ndarray:
    """Stationary covariance of θ' = θ − (ε/2) Λ (θ − μ) + N(0, ε I): per eigenvalue λ of Λ,
    v = ε / (1 − (1 − ελ/2)²) = 1 / (λ (1 − ελ/4)), i.e. (Λ − εΛ²/4)⁻¹."""
    return np.linalg.inv(precision - step * precision @ precision / 4)


def sgld_settings(target: LinearRegression, bias: float) -> dict:
    """A step with relative variance bias ελ_max/4 ≈ ``bias`` in the stiffest direction, and a
    thinning long enough (≥ 3 relaxation times 2/(ελ_min)) for nearly independent draws."""
    eigenvalues = np.linalg.eigvalsh(target.posterior_precision())
    step = 4 * bias / eigenvalues.max()
    thin = int(np.ceil(6 / (step * eigenvalues.min())))
    return {
        "step": step,
        "thin": thin,
        "burn_in": 5 * thin,
        "chains": 200,
        "num_draws": 4000,
        "seed": 3,
    }


def test_sgld_matches_closed_form_up_to_its_step_bias(tmp_path):
    target = make_target(TARGET)
    overrides = sgld_settings(target, bias=0.01)
    out = reference(TARGET, tmp_path / "sgld.zarr", "sgld", overrides)
    ds = artifacts.read(out, artifacts.REFERENCE_DRAWS)
    assert ds.attrs["engine"] == "sgld" and ds.draws.shape == (200, 20, 5)
    exact = target.posterior_covariance()
    biased = sgld_covariance(target.posterior_precision(), overrides["step"])
    # The O(ε) bias is at most 1% of a variance here (ελ_max/4 = 0.01) ...
    assert np.abs(biased - exact).max() <= 0.0102 * np.abs(exact).max()
    # ... and the draws agree with the closed form within 4 MCSE plus that exact bias.
    assert_matches_gaussian(
        ds.draws.values,
        target.posterior_mean(),
        exact,
        slack=np.abs(biased - exact)[np.triu_indices(5)],
    )
    diagnostics = json.loads(ds.attrs["diagnostics"])
    # R̂ of 400 split chains of 10 draws scatters by ~0.01 even for exact draws: 1.05 flags
    # only chains that disagree.
    assert diagnostics["gate"]["enforced"] is False and diagnostics["max_rhat"] < 1.05
    assert diagnostics["iterations"] == overrides["burn_in"] + 20 * overrides["thin"]


def test_sgld_step_bias_is_the_predicted_one():
    # A 10× larger step: variance inflated by up to 1/(1 − 0.1) ≈ 11% in the stiffest
    # direction. The draws match the predicted biased covariance, not the exact one.
    target = make_target(TARGET)
    engine = ENGINES["sgld"]()
    overrides = sgld_settings(target, bias=0.1)
    draws = engine.run(target, resolve(SgldSettings, overrides)).draws
    biased = sgld_covariance(target.posterior_precision(), overrides["step"])
    assert_matches_gaussian(draws, target.posterior_mean(), biased)
    with pytest.raises(AssertionError):
        assert_matches_gaussian(draws, target.posterior_mean(), target.posterior_covariance())


def test_sgld_divergence_and_enforced_gate_raise():
    target = make_target(TARGET)
    engine = ENGINES["sgld"]()
    with pytest.raises(SettingsError, match="lower setting 'step'"):
        engine.run(target, resolve(SgldSettings, {"step": 10.0, "burn_in": 1000, "num_draws": 100}))
    # No burn-in from a start 10× wider than the prior: chains still remember their start.
    gated = resolve(
        SgldSettings,
        {
            "step": 1e-3,
            "burn_in": 0,
            "thin": 1,
            "chains": 10,
            "num_draws": 2000,
            "init_scale": 10.0,
            "enforce_gate": True,
        },
    )
    with pytest.raises(DiagnosticsGateError, match="max_rhat"):
        engine.run(target, gated)
