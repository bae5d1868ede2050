"""The semi-implicit conditional-Gaussian family (Yin & Zhou 2018; KSIVI, Cheng et al. 2024).

    z ~ N(0, I_{z_dim}),   x | z ~ N(μ_φ(z), LLᵀ),   i.e.  x = μ_φ(z) + L ε,  ε ~ N(0, I),

with L = diag(σ) (the papers' toys and KSIVI's experiments) or, with ``full_covariance``, a
lower-triangular L = diag(σ) + strictly-lower part shared by every z (SIVI's logistic-regression
code, Yin & Zhou 2018: a learned Cholesky factor of one covariance). The marginal
q_φ(x) = E_z[q_φ(x | z)] is intractable, but the conditional score is explicit:
∇_x log q_φ(x | z) = −(LLᵀ)⁻¹(x − μ_φ(z)) = −L⁻ᵀ ε (= −ε / σ for the diagonal L).

Its ELBO, which needs log q_φ(x), is bracketed by the SIVI / DSIVI bounds built from mixtures of
conditionals (Yin & Zhou 2018; Molchanov et al. 2019), which :func:`elbo_sandwich` estimates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sivi_engine.kernels import pairwise_squared_distances
from sivi_engine.metric_metadata import Catalogue, MetricInfo, higher
from sivi_engine.targets.base import Target


class MixtureDraw(NamedTuple):
    """n reparameterised draws xᵢ = μ(z₀ᵢ) + σ ⊙ εᵢ with log q(xᵢ | z₀ᵢ), shape (n,), and
    log q(xᵢ | z_k), shape (n, K), for K fresh z_k ~ p(z) shared by all xᵢ."""

    x: Tensor
    own: Tensor
    others: Tensor


class ConditionalDraw(NamedTuple):
    """A reparameterised draw: x, its mixing variable z, and ∇_x log q(x | z)."""

    x: Tensor
    z: Tensor
    conditional_score: Tensor


def mlp(sizes: tuple[int, ...], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Fully connected network with ``activation`` between layers and a linear output."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    return nn.Sequential(*layers[:-1])


class SemiImplicitGaussian(nn.Module):
    """x = μ_φ(z) + L ε with an MLP mean μ_φ and a global scale L: diagonal, σ = exp(log σ),
    or with ``full_covariance`` lower-triangular with diagonal σ and a learned strictly-lower
    part (initially zero).

    ``log σ`` is clamped below at ``log(min_sigma)`` so the conditional score −L⁻ᵀε stays
    bounded. With ``learn_sigma`` False, log σ is a buffer, fixed at ``init_sigma`` (SIVI's 2-D
    code fixes σ = 0.1; Yin & Zhou 2018).
    """

    def __init__(
        self,
        dim: int,
        z_dim: int,
        hidden: tuple[int, ...],
        init_sigma: float = 1.0,
        min_sigma: float = 1e-3,
        learn_sigma: bool = True,
        full_covariance: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.z_dim = dim, z_dim
        self.mean_net = mlp((z_dim, *hidden, dim))
        log_sigma = torch.full((dim,), math.log(init_sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        self.min_log_sigma = math.log(min_sigma)
        self.lower = nn.Parameter(torch.zeros(dim, dim)) if full_covariance else None

    def sigma(self) -> Tensor:
        """The diagonal of L."""
        return self.log_sigma.clamp_min(self.min_log_sigma).exp()

    def scale_tril(self) -> Tensor | None:
        """L with ``full_covariance``: diag(σ) + the strictly-lower part; None when diagonal."""
        if self.lower is None:
            return None
        return torch.diag(self.sigma()) + torch.tril(self.lower, diagonal=-1)

    def colour(self, eps: Tensor) -> Tensor:
        """L ε for each row ε of ``eps``."""
        tril = self.scale_tril()
        return self.sigma() * eps if tril is None else eps @ tril.T

    def whiten(self, v: Tensor) -> Tensor:
        """L⁻¹ v for each row v (so ‖L⁻¹(x − μ)‖² is the conditional's Mahalanobis distance)."""
        tril = self.scale_tril()
        if tril is None:
            return v / self.sigma()
        return torch.linalg.solve_triangular(tril, v.T, upper=False).T

    def rsample(self, n: int) -> ConditionalDraw:
        """n reparameterised draws with their conditional scores −L⁻ᵀε (differentiable in φ)."""
        like = {"device": self.log_sigma.device, "dtype": self.log_sigma.dtype}
        z = torch.randn(n, self.z_dim, **like)
        eps = torch.randn(n, self.dim, **like)
        x = self.mean(z) + self.colour(eps)
        tril = self.scale_tril()
        if tril is None:
            score = -eps / self.sigma()
        else:
            score = -torch.linalg.solve_triangular(tril.T, eps.T, upper=True).T
        return ConditionalDraw(x=x, z=z, conditional_score=score)

    def mean(self, z: Tensor) -> Tensor:
        """The conditional mean μ_φ(z), shape (n, dim)."""
        return self.mean_net(z)

    def mixture_draws(self, n: int, k: int) -> MixtureDraw:
        """n reparameterised draws with their conditional log-densities under their own z₀ and
        under K fresh mixing draws (differentiable in φ; one MLP pass over all n + K draws).

        log q(xᵢ | z₀ᵢ) = −½‖εᵢ‖² − Σ log σ − (d/2) log 2π exactly, since L⁻¹(xᵢ − μ(z₀ᵢ)) = εᵢ
        and log |det L| = Σ log σ for a triangular L with diagonal σ.
        """
        like = {"device": self.log_sigma.device, "dtype": self.log_sigma.dtype}
        means = self.mean(torch.randn(n + k, self.z_dim, **like))
        eps = torch.randn(n, self.dim, **like)
        x = means[:n] + self.colour(eps)
        normaliser = diagonal_normal_log_normaliser(self.sigma())
        own = -0.5 * eps.square().sum(-1) + normaliser
        others = pairwise_conditional_log_prob(x, means[n:], self.whiten, normaliser)
        return MixtureDraw(x=x, own=own, others=others)

    def log_prob_estimate(self, x: Tensor, k: int) -> Tensor:
        """log((1/K) Σ_k q(x | z_k)) per row, K fresh z_k ~ p(z) shared by the batch: exp of it
        is unbiased for q(x), so it is ≤ log q(x) in expectation (DSIVI's bound on a
        semi-implicit target; Molchanov et al. 2019)."""
        like = {"device": self.log_sigma.device, "dtype": self.log_sigma.dtype}
        means = self.mean(torch.randn(k, self.z_dim, **like))
        normaliser = diagonal_normal_log_normaliser(self.sigma())
        pairs = pairwise_conditional_log_prob(x, means, self.whiten, normaliser)
        return torch.logsumexp(pairs, dim=1) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, chunk: int = 65536) -> Tensor:
        """n draws from the marginal q_φ(x), without gradients."""
        return torch.cat([self.rsample(min(chunk, n - i)).x for i in range(0, n, chunk)])


def diagonal_normal_log_normaliser(sigma: Tensor) -> Tensor:
    """log of the N(μ, diag σ²) normalising constant: −Σ log σ − (d/2) log 2π."""
    return -sigma.log().sum() - 0.5 * sigma.shape[-1] * math.log(2 * math.pi)


def pairwise_conditional_log_prob(
    x: Tensor, means: Tensor, whiten: Callable[[Tensor], Tensor], normaliser: Tensor
) -> Tensor:
    """log N(xᵢ; μ_k, LLᵀ) for every pair, shape (n, K), from ``whiten`` (v ↦ L⁻¹v, linear) and
    the log normalising constant.

    The squared Mahalanobis distance ‖L⁻¹(xᵢ − μ_k)‖² comes from inner products of L⁻¹x and
    L⁻¹μ, so no (n, K, d) tensor is built; both are first centred on the mean of the μ_k
    (distances are shift-invariant) to limit cancellation in low precision.
    """
    centre = means.detach().mean(0)
    squared = pairwise_squared_distances(whiten(x - centre), whiten(means - centre))
    return -0.5 * squared + normaliser


#: The K of :func:`elbo_sandwich`'s default bounds.
SANDWICH_KS = (10, 100, 1000)


def sandwich_lower_info(k: str) -> MetricInfo:
    """The entry of ``elbo_lower_k<k>``."""
    return higher(
        f"SIVI lower bound on the ELBO with K = {k} mixing draws (Yin & Zhou; DSIVI)"
    ).marked("diagnostic", "nats")


def sandwich_upper_info(k: str) -> MetricInfo:
    """The entry of ``elbo_upper_k<k>``."""
    return MetricInfo(
        f"DSIVI upper bound on the ELBO with K = {k} mixing draws",
        "closest to the lower bound",
        "",
        kind="diagnostic",
        unit="nats",
    )


#: The bounds :func:`elbo_sandwich` reports: at the default K always, at any K by pattern.
SANDWICH_DIAGNOSTICS = Catalogue(
    always={
        f"elbo_{side}_k{k}": info(str(k))
        for k in SANDWICH_KS
        for side, info in (("lower", sandwich_lower_info), ("upper", sandwich_upper_info))
    },
    numbered={
        r"elbo_lower_k(\d+)": sandwich_lower_info,
        r"elbo_upper_k(\d+)": sandwich_upper_info,
    },
)


@torch.no_grad()
def elbo_sandwich(
    q: SemiImplicitGaussian,
    target: Target,
    ks: tuple[int, ...] = SANDWICH_KS,
    num_samples: int = 1000,
) -> dict[str, float]:
    """Monte-Carlo lower and upper bounds on ELBO(q) = E_q[log p(x) − log q(x)] for each K in ks.

    With x = μ(z₀) + σε, z₀ ~ p(z), and z₁..z_K ~ p(z) independent of x (Molchanov et al. 2019,
    DSIVI; Yin & Zhou 2018, SIVI):

        L_K = E[log p(x) − log((1/(K+1)) Σ_{k=0..K} q(x | z_k))]   (includes z₀)
        U_K = E[log p(x) − log((1/K)     Σ_{k=1..K} q(x | z_k))]   (excludes z₀)

    L_K is non-decreasing and U_K non-increasing in K, and L_K ≤ ELBO ≤ U_K, both tending to the
    ELBO as K → ∞ (U_K by Jensen). For a normalised target ELBO = −KL(q‖p), so
    −U_K ≤ KL(q‖p) ≤ −L_K. All ``num_samples`` x share one set of max(ks) mixing draws, and the
    K in ``ks`` use nested prefixes of it (common random numbers, so the bounds are ordered in K
    up to far less noise than independent estimates). Memory: one (num_samples, max(ks)) matrix.

    Returns ``{"elbo_lower_k{K}": L_K, "elbo_upper_k{K}": U_K}`` for each K.
    """
    if min(ks) < 1 or num_samples < 1:
        raise ValueError(f"elbo_sandwich: need K, num_samples >= 1, got {ks}, {num_samples}")
    draw = q.mixture_draws(num_samples, max(ks))
    log_p = target.log_prob(draw.x)
    log_sums = torch.logcumsumexp(draw.others, dim=1)  # log Σ_{k ≤ K} q(x | z_k) for every K
    bounds: dict[str, Tensor] = {}
    for k in ks:
        log_sum = log_sums[:, k - 1]
        bounds[f"elbo_lower_k{k}"] = log_p - torch.logaddexp(draw.own, log_sum) + math.log(k + 1)
        bounds[f"elbo_upper_k{k}"] = log_p - log_sum + math.log(k)
    means = torch.stack([b.mean() for b in bounds.values()]).tolist()  # one host transfer
    return dict(zip(bounds, means))
