"""The Student-t as a Gaussian scale mixture (the hierarchy of DSIVI's semi-implicit priors;
Molchanov et al. 2019, "Doubly semi-implicit variational inference"):

    x | α ~ N(0, 1/α),   α ~ Gamma(ν/2, rate ν/2)   ⇒   x ~ t_ν  (ν = 1: the standard Cauchy).

The mixing variable is carried on the log scale, u = log α, whose density is

    log π(u) = (ν/2) log(ν/2) − log Γ(ν/2) + (ν/2) u − (ν/2) eᵘ   (the Gamma density times α),

and the conditional is log N(x; 0, e^{−u}) = −½ log 2π + ½ u − ½ eᵘ x². Every function acts
coordinate-wise and sums over the last axis: each coordinate has its own α.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def student_t_log_density(x: Tensor, df: float) -> Tensor:
    """Σ_j log t_ν(x_j), log t_ν(t) = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ)
    − (ν+1)/2 · log(1 + t²/ν)."""
    const = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return (const - (df + 1) / 2 * torch.log1p(x**2 / df)).sum(-1)


def log_precision_log_density(u: Tensor, df: float) -> Tensor:
    """Σ_j log π(u_j) for u = log α, α ~ Gamma(ν/2, rate ν/2) (Jacobian eᵘ included)."""
    shape = rate = df / 2
    const = shape * math.log(rate) - math.lgamma(shape)
    return (const + shape * u - rate * u.exp()).sum(-1)


def sample_log_precision(shape: tuple[int, ...], df: float, like: Tensor) -> Tensor:
    """u = log α with α ~ Gamma(ν/2, rate ν/2), from torch's global generator; α is kept above
    the dtype's smallest normal number so that u is finite (float32, ν = 1:
    P(α < 1.2e-38) ≈ 1e-19)."""
    concentration = torch.full(shape, df / 2, dtype=like.dtype, device=like.device)
    alpha = torch.distributions.Gamma(concentration, concentration).sample()
    return alpha.clamp_min(torch.finfo(like.dtype).tiny).log()


def conditional_normal_log_density(x: Tensor, u: Tensor) -> Tensor:
    """Σ_j log N(x_j; 0, e^{−u_j}) for paired rows of x and u."""
    return (0.5 * (u - u.exp() * x**2 - math.log(2 * math.pi))).sum(-1)


def coordinatewise_mixture_estimate(x: Tensor, k: int, df: float) -> Tensor:
    """Σ_j log((1/K) Σ_k N(x_j; 0, 1/α_kj)) with K fresh α_kj per coordinate, shared by the batch.

    Each coordinate's average is unbiased for t_ν(x_j) and the coordinates' α are independent,
    so exp of the sum is unbiased for the product density; by Jensen the estimate is below
    log t_ν(x) in expectation, and the gap shrinks as K grows (DSIVI's prior bound)."""
    u = sample_log_precision((k, x.shape[-1]), df, x)  # (K, d)
    pairs = 0.5 * (u - u.exp() * x[:, None, :] ** 2 - math.log(2 * math.pi))  # (n, K, d)
    return (torch.logsumexp(pairs, dim=1) - math.log(k)).sum(-1)
