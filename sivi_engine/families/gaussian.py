"""The Gaussian family q = N(μ, S Sᵀ), reparameterised as x = μ + S ε, ε ~ N(0, I).

Three parametrisations of the scale S, each an ``nn.Module`` built from an initial matrix:

- ``diagonal`` (mean field): S = diag(exp ω), ω = log σ unconstrained (ADVI's mean-field
  family, Kucukelbir et al. 2017);
- ``cholesky`` (full rank): S = L lower triangular, its strictly lower part unconstrained and
  its diagonal exp ω, so Σ = LLᵀ is positive definite and L is Σ's Cholesky factor;
- ``square`` (full rank): S = A, an unconstrained d×d matrix. The flow of Σ = AAᵀ under
  gradient ascent on A does not depend on the rotation A ↦ AQ (see ``gaussian_vi``), and
  BBVI in this parametrisation is SVGD with the kernel 1 + (x − μ)ᵀΣ⁻¹(y − μ)
  (Chu, Minami & Fukumizu 2020).

The entropy is analytic: H(q) = (d/2) log(2πe) + log |det S|.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sivi_engine.metric_metadata import Catalogue, higher, lower
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import SemiImplicitDensity


class DiagonalScale(nn.Module):
    """S = diag(exp ω)."""

    def __init__(self, initial: Tensor) -> None:
        super().__init__()
        self.log_diagonal = nn.Parameter(initial.diagonal().log().clone())

    def matrix(self) -> Tensor:
        return torch.diag(self.log_diagonal.exp())

    def apply(self, eps: Tensor) -> Tensor:
        """S ε for each row ε of ``eps``."""
        return eps * self.log_diagonal.exp()

    def log_abs_det(self) -> Tensor:
        return self.log_diagonal.sum()


class CholeskyScale(nn.Module):
    """S = L = strictly-lower(M) + diag(exp ω); the upper triangle of M is unused."""

    def __init__(self, initial: Tensor) -> None:
        super().__init__()
        self.log_diagonal = nn.Parameter(initial.diagonal().log().clone())
        self.lower = nn.Parameter(torch.tril(initial, diagonal=-1).clone())

    def matrix(self) -> Tensor:
        return torch.tril(self.lower, diagonal=-1) + torch.diag(self.log_diagonal.exp())

    def apply(self, eps: Tensor) -> Tensor:
        return eps @ self.matrix().T

    def log_abs_det(self) -> Tensor:
        return self.log_diagonal.sum()


class SquareScale(nn.Module):
    """S = A, any invertible d×d matrix."""

    def __init__(self, initial: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(initial.clone())

    def matrix(self) -> Tensor:
        return self.weight

    def apply(self, eps: Tensor) -> Tensor:
        return eps @ self.weight.T

    def log_abs_det(self) -> Tensor:
        return torch.linalg.slogdet(self.weight).logabsdet


Scale = DiagonalScale | CholeskyScale | SquareScale

SCALES: dict[str, type[Scale]] = {
    "diagonal": DiagonalScale,
    "cholesky": CholeskyScale,
    "square": SquareScale,
}


class GaussianFamily(nn.Module):
    """q = N(μ, S Sᵀ) with a learnable mean μ and a scale S from :data:`SCALES`."""

    def __init__(self, loc: Tensor, scale: Scale) -> None:
        super().__init__()
        self.loc = nn.Parameter(loc.clone())
        self.scale = scale

    @classmethod
    def standard(cls, dim: int, parametrisation: str, init_scale: float = 1.0) -> GaussianFamily:
        """N(0, init_scale² I) in the named parametrisation (ADVI's initialisation for 1)."""
        return cls(torch.zeros(dim), SCALES[parametrisation](init_scale * torch.eye(dim)))

    @property
    def dim(self) -> int:
        return self.loc.shape[0]

    def transform(self, eps: Tensor) -> Tensor:
        """x = μ + S ε, differentiable in (μ, S)."""
        return self.loc + self.scale.apply(eps)

    def rsample(self, n: int) -> Tensor:
        """n reparameterised draws."""
        return self.transform(
            torch.randn(n, self.dim, dtype=self.loc.dtype, device=self.loc.device)
        )

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws without gradients."""
        return self.rsample(n)

    def entropy(self) -> Tensor:
        """H(q) = (d/2) log(2πe) + log |det S|."""
        return 0.5 * self.dim * math.log(2 * math.pi * math.e) + self.scale.log_abs_det()

    def covariance(self) -> Tensor:
        """Σ = S Sᵀ."""
        s = self.scale.matrix()
        return s @ s.T


#: Draws per chunk of :func:`elbo_terms` (bounds the target's batch, e.g. a BNN's activations).
ELBO_CHUNK = 100


#: What :func:`elbo_terms` reports.
ELBO_DIAGNOSTICS = Catalogue(
    always={
        "elbo": higher(
            "ELBO(q) = E_q[log p(x)] + H(q) of an explicit Gaussian q by Monte Carlo, with the "
            "target's closed-form density (the marginal ELBO of a hierarchical model)"
        )
        .marked("diagnostic", "nats")
        .shown(("elbo", 0))
    },
    sometimes={
        "elbo_kl_term": lower(
            "the ELBO's KL term KL(q‖π) against the closed-form semi-implicit factor π (a prior)"
        )
        .marked("diagnostic", "nats")
        .shown(("elbo", 1))
    },
)


def elbo_terms(q: GaussianFamily, target: Target, n: int) -> dict[str, float]:
    """ELBO(q) = E_q[log p(x)] + H(q) by n draws (the marginal ELBO when log p uses the closed-form
    prior), and where the target's semi-implicit factor has a closed form
    (:meth:`~sivi_engine.targets.capabilities.SemiImplicitDensity.exact_semi_implicit_log_prob`)
    its KL term KL(q‖π) = −H(q) − E_q[log π(x)]."""
    x = q.sample(n)
    entropy = float(q.entropy())
    log_p = torch.cat([target.log_prob(chunk) for chunk in x.split(ELBO_CHUNK)])
    out = {"elbo": float(log_p.mean()) + entropy}
    if isinstance(target, SemiImplicitDensity):
        log_prior = target.exact_semi_implicit_log_prob(x)
        if log_prior is not None:
            out["elbo_kl_term"] = -entropy - float(log_prior.mean())
    return out
