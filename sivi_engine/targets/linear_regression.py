"""Conjugate Bayesian linear regression: a d-dimensional Gaussian posterior known in closed form.

Model (Bishop 2006, PRML §3.3): y = X β + ε, ε ~ N(0, σ² I) with σ known, prior β ~ N(0, τ² I).
The posterior is N(μ, Σ) with

    Λ = Σ⁻¹ = XᵀX / σ² + I / τ²,    μ = Σ Xᵀy / σ².

It is the test bed of the MCMC reference engines: Stan NUTS and SGLD draws are checked against
μ and Σ. The data are synthetic and seeded (:func:`simulate`); the Stan program of the same
model is ``stan/linear_regression.stan`` (:meth:`LinearRegression.stan_data`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import StanModel
from sivi_engine.targets.registry import TARGETS

#: Half-width of the plotting box in posterior standard deviations.
PLOT_SDS = 6.0


@dataclasses.dataclass(frozen=True)
class LinearRegressionSettings:
    """Size and constants of the synthetic regression problem."""

    num_obs: int = 100
    num_features: int = 5  # columns of X, the first being the intercept
    noise_sd: float = 1.0  # σ, known
    prior_sd: float = 1.0  # τ
    data_seed: int = 0

    def validate(self) -> None:
        for field in ("num_obs", "num_features"):
            if getattr(self, field) < 1:
                raise SettingsError(f"setting {field!r} must be ≥ 1, got {getattr(self, field)!r}")
        for field in ("noise_sd", "prior_sd"):
            if not getattr(self, field) > 0:
                raise SettingsError(f"setting {field!r} must be > 0, got {getattr(self, field)!r}")


def simulate(settings: LinearRegressionSettings) -> tuple[np.ndarray, np.ndarray]:
    """Seeded data (X, y): X = [1, Z] with Z iid N(0, 1), β* ~ N(0, τ² I), y = X β* + σ ε.

    All three draws come, in this order, from ``numpy.random.default_rng(data_seed)``.
    """
    rng = np.random.default_rng(settings.data_seed)
    n, d = settings.num_obs, settings.num_features
    x = np.hstack([np.ones((n, 1)), rng.standard_normal((n, d - 1))])
    beta = settings.prior_sd * rng.standard_normal(d)
    y = x @ beta + settings.noise_sd * rng.standard_normal(n)
    return x, y


def posterior(
    x: np.ndarray, y: np.ndarray, noise_sd: float, prior_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form posterior (μ, Λ): Λ = XᵀX/σ² + I/τ², μ = Λ⁻¹ Xᵀy/σ²."""
    precision = x.T @ x / noise_sd**2 + np.eye(x.shape[1]) / prior_sd**2
    mean = np.linalg.solve(precision, x.T @ y / noise_sd**2)
    return mean, precision


@TARGETS.register("linreg_conjugate")
class LinearRegression(Target, StanModel):
    """The exact Gaussian posterior N(μ, Σ) of a conjugate linear regression (module docstring).

    ``log_prob`` is the normalised log N(β; μ, Σ), equal to log-likelihood + log-prior up to a
    constant; score −Λ(β − μ).
    """

    name = "linreg_conjugate"
    Settings = LinearRegressionSettings
    normalised = True
    stan_program = "linear_regression.stan"

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        s = self.settings
        self.x, self.y = simulate(s)
        mean, precision = posterior(self.x, self.y, s.noise_sd, s.prior_sd)
        self._mean = torch.as_tensor(mean)
        self._precision = torch.as_tensor(precision)
        self._covariance = torch.linalg.inv(self._precision)
        self._log_norm = 0.5 * (
            torch.linalg.slogdet(self._precision).logabsdet.item()
            - self.dim * math.log(2 * math.pi)
        )

    @property
    def dim(self) -> int:
        return self.settings.num_features

    def param_names(self) -> list[str]:
        return [f"beta[{i}]" for i in range(self.dim)]

    def posterior_mean(self) -> np.ndarray:
        """μ, shape (d,), float64."""
        return self._mean.numpy().copy()

    def posterior_covariance(self) -> np.ndarray:
        """Σ = Λ⁻¹, shape (d, d), float64."""
        return self._covariance.numpy().copy()

    def posterior_precision(self) -> np.ndarray:
        """Λ, shape (d, d), float64."""
        return self._precision.numpy().copy()

    def stan_data(self) -> dict[str, Any]:
        """The data block of ``stan/linear_regression.stan``."""
        s = self.settings
        return {
            "N": s.num_obs,
            "D": s.num_features,
            "X": self.x,
            "y": self.y,
            "sigma": s.noise_sd,
            "prior_sd": s.prior_sd,
        }

    def log_prob(self, x: Tensor) -> Tensor:
        """log N(x; μ, Σ) = ½ log det Λ − (d/2) log 2π − ½ (x − μ)ᵀ Λ (x − μ)."""
        centred = x - self._mean.to(x)
        quad = ((centred @ self._precision.to(x)) * centred).sum(dim=1)
        return self._log_norm - 0.5 * quad

    def score(self, x: Tensor) -> Tensor:
        """−Λ (x − μ) (Λ symmetric)."""
        return -(x - self._mean.to(x)) @ self._precision.to(x)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """μ + L z with L Lᵀ = Σ, z iid N(0, I)."""
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self._mean + z @ torch.linalg.cholesky(self._covariance).T

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """μᵢ ± 6 sdᵢ per coordinate."""
        sd = self._covariance.diagonal().sqrt()
        return tuple(
            (float(m - PLOT_SDS * s), float(m + PLOT_SDS * s)) for m, s in zip(self._mean, sd)
        )
