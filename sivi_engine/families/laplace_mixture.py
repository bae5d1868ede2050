"""The Laplace distribution as a Gaussian scale mixture (DSIVI's explicit-but-written-implicitly
q; Molchanov et al. 2019, §5.1):

    x = μ + √τ ε,   τ ~ Exp(rate λ),   ε ~ N(0, I)   ⇒   x_j ~ Laplace(μ_j, b_j = 1/√(2λ_j)),

coordinate-wise. Training sees only the mixture (:meth:`LaplaceScaleMixture.mixture_draws`,
as SIVI's bound needs); :meth:`LaplaceScaleMixture.log_prob` is the closed form, for the exact
KL(q‖p) along training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from sivi_engine.families.semi_implicit import MixtureDraw


class LaplaceScaleMixture(nn.Module):
    """Per coordinate a location μ_j and a log-rate log λ_j of the mixing Exp(λ_j); initially
    μ = 0 and λ = 1/2 (b = 1, the standard Laplace)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_rate = nn.Parameter(torch.full((dim,), math.log(0.5)))

    @property
    def dim(self) -> int:
        return self.loc.shape[0]

    def scale(self) -> Tensor:
        """The Laplace scale b = 1/√(2λ)."""
        return (2 * self.log_rate.exp()).rsqrt()

    def _variances(self, n: int) -> Tensor:
        """n reparameterised draws τ = E/λ, E ~ Exp(1), shape (n, d)."""
        unit = torch.empty(n, self.dim, dtype=self.loc.dtype, device=self.loc.device).exponential_()
        return unit / self.log_rate.exp()

    def mixture_draws(self, n: int, k: int) -> MixtureDraw:
        """n draws x = μ + √τ₀ ε with log N(x | μ, τ₀) and log N(xᵢ | μ, τ_k) for K fresh τ_k
        shared by the batch (differentiable in μ, λ)."""
        variances = self._variances(n + k)
        own_var, other_var = variances[:n], variances[n:]
        eps = torch.randn(n, self.dim, dtype=self.loc.dtype, device=self.loc.device)
        x = self.loc + own_var.sqrt() * eps
        own = (-0.5 * eps**2 - 0.5 * own_var.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        return MixtureDraw(x=x, own=own, others=self.conditional_log_prob_pairs(x, other_var))

    def conditional_log_prob_pairs(self, x: Tensor, variances: Tensor) -> Tensor:
        """log N(xᵢ | μ, diag τ_k) for every row of x (n, d) and of τ (K, d): (n, K)."""
        return (
            -0.5 * (x - self.loc) ** 2 @ variances.reciprocal().T
            - 0.5 * variances.log().sum(-1)
            - 0.5 * self.dim * math.log(2 * math.pi)
        )

    def log_prob_estimate(self, x: Tensor, k: int) -> Tensor:
        """log((1/K) Σ_k N(x | μ, τ_k)), K fresh τ_k: exp unbiased for q(x)."""
        pairs = self.conditional_log_prob_pairs(x, self._variances(k))
        return torch.logsumexp(pairs, dim=1) - math.log(k)

    def log_prob(self, x: Tensor) -> Tensor:
        """Σ_j log Laplace(x_j; μ_j, b_j) = Σ_j [−log 2b_j − |x_j − μ_j| / b_j]."""
        b = self.scale()
        return (-torch.log(2 * b) - (x - self.loc).abs() / b).sum(-1)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws from q."""
        variances = self._variances(n)
        return self.loc + variances.sqrt() * torch.randn_like(variances)


#: Below this log-density the integrand of the KL is taken as 0 (e^−700 ≈ 1e−304).
MIN_LOG_DENSITY = -700.0


def laplace_kl_by_quadrature(
    loc: float, scale: float, log_p: Callable[[np.ndarray], np.ndarray]
) -> float:
    """KL(Laplace(loc, scale) ‖ p) = ∫ q (log q − log p) dx on R by adaptive quadrature, for a
    normalised 1-D log-density ``log_p`` (vectorised over points); the integral is split at
    ``loc``, where q has its kink."""
    from scipy import integrate  # quadrature only here

    def integrand(x: float) -> float:
        log_q = -math.log(2 * scale) - abs(x - loc) / scale
        if log_q < MIN_LOG_DENSITY:  # q's mass out there is below float64's resolution
            return 0.0
        return math.exp(log_q) * (log_q - float(log_p(np.array([x]))[0]))

    left = integrate.quad(integrand, -np.inf, loc, limit=200)[0]
    right = integrate.quad(integrand, loc, np.inf, limit=200)[0]
    return left + right


def best_laplace_kl(log_p: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float, float]:
    """min over (loc, scale) of KL(Laplace(loc, scale) ‖ p) by Nelder–Mead on (loc, log scale)
    from the standard Laplace, each KL by :func:`laplace_kl_by_quadrature`; returns the KL and
    its minimiser (loc, scale)."""
    from scipy import optimize

    result = optimize.minimize(
        lambda v: laplace_kl_by_quadrature(v[0], math.exp(v[1]), log_p),
        x0=np.zeros(2),
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-10},
    )
    return float(result.fun), float(result.x[0]), math.exp(result.x[1])
