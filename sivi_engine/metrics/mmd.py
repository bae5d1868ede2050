"""Maximum mean discrepancy with a Gaussian kernel and the median-distance bandwidth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial.distance import pdist

from sivi_engine.metrics.arrays import as_samples, subsample


def median_bandwidth(y: np.ndarray, max_points: int = 2000, seed: int = 0) -> float:
    """ℓ = median of the pairwise Euclidean distances ‖yᵢ − yⱼ‖, i < j, of the reference sample
    (the median heuristic, Gretton et al. 2012, JMLR 13, sec. 8), on a fixed-seed subsample of
    at most ``max_points`` rows."""
    y = subsample(as_samples(y, "y"), max_points, np.random.default_rng(seed))
    if y.shape[0] < 2:
        raise ValueError("median_bandwidth needs at least two points")
    return float(np.median(pdist(y)))


#: Multiples of the median bandwidth whose Gaussian kernels the multi-scale MMD² averages: the
#: median distance of a d-dimensional posterior grows like √d sds, so in 22-D the median kernel
#: alone sees mostly the bulk; the narrower ones see local shape, the wider one the tails.
MULTISCALE_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)


def _gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float]) -> torch.Tensor:
    """k(a, b) = mean over ℓ in ``bandwidths`` of exp(−‖a − b‖² / (2ℓ²)); squared distances
    from inner products, clamped ≥ 0."""
    sq = ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)).clamp_min(0.0)
    return sum(torch.exp(-sq / (2.0 * ell**2)) for ell in bandwidths) / len(bandwidths)


def mmd_squared(
    x: np.ndarray,
    y: np.ndarray,
    bandwidth: float | Sequence[float],
    max_points: int = 2000,
    seed: int = 0,
    device: str = "cpu",
) -> float:
    """Unbiased MMD² (Gretton et al. 2012, JMLR 13, eq. 3) with the Gaussian kernel of width ℓ:

    MMD²_u = Σ_{i≠j} k(xᵢ,xⱼ)/(n(n−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/(nm).

    With several bandwidths the kernel is the mean of their Gaussian kernels (characteristic,
    as each is), so the MMD² is the mean of the single-bandwidth ones.

    Both samples are first subsampled (fixed seed) to at most ``max_points`` rows, as the cost is
    quadratic. Unbiased, so it can be slightly negative when the distributions agree. Kernel
    matrices are computed in float64 on ``device``.
    """
    rng = np.random.default_rng(seed)
    x = subsample(as_samples(x, "x"), max_points, rng)
    y = subsample(as_samples(y, "y"), max_points, rng)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("mmd_squared needs at least two points in each sample")
    bandwidths = (bandwidth,) if isinstance(bandwidth, int | float) else tuple(bandwidth)
    if not bandwidths or not all(ell > 0 for ell in bandwidths):
        raise ValueError(f"bandwidths must be positive, got {bandwidth}")
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    yt = torch.as_tensor(y, dtype=torch.float64, device=device)
    kxx = _gaussian_kernel(xt, xt, bandwidths)
    kyy = _gaussian_kernel(yt, yt, bandwidths)
    kxy = _gaussian_kernel(xt, yt, bandwidths)
    term_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    term_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())
