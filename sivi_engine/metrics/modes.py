"""Mode coverage of q on a Gaussian-mixture target with separated components.

q's mass at mode k is the fraction of q's draws that lie in mode k's *neighbourhood*: the points
whose nearest component centre (Euclidean) is μ_k and which lie within ``MODE_RADIUS_SDS``
Mahalanobis units of μ_k under Σ_k. Mode k is *covered* when that mass is at least
``min_share · w_k``.

- Nearest centre, not the target's responsibilities argmax_k w_k N(x; μ_k, Σ_k): the cells then
  do not depend on the weights, so a light mode's cell is not shrunk in favour of a heavy
  neighbour. Every separated mixture registered here (multimodal, multimodal4, ring8, gmm1d) has
  one shared isotropic covariance, for which these cells are exactly the cells of the
  equal-weight Bayes classifier.
- The radius: without it a q sitting between the modes (e.g. a blob at the centre of ring8)
  would be split evenly over the cells and "cover" every mode. Within 3 sds a component keeps
  P(χ²_d ≤ 9) of its mass (98.9% in 2-D, 99.7% in 1-D), so exact draws of p score
  mass_k ≈ w_k.

Modes must be distinct for coverage to mean anything: x_shaped's two components share one centre.
The metric is reported only when there are at least two components and every pair of centres is
at least ``MIN_SEPARATION_SDS`` standard deviations apart (measured along the line joining them,
with the larger of the two components' sds); otherwise it returns nothing.
"""

from __future__ import annotations

import numpy as np

from sivi_engine.metric_metadata import Catalogue, MetricInfo, ideal
from sivi_engine.metrics.arrays import as_samples

#: The names :func:`mode_coverage` returns.
DECLARED = Catalogue(
    sometimes={
        "mode_coverage": ideal(
            "fraction of the target's modes holding at least mode_min_share × their weight of"
            " q's mass",
            1,
        ),
    },
    numbered={
        r"mode_mass_(\d+)": lambda k: MetricInfo(
            f"share of q's mass assigned to target mode {k} (nearest centre within 3 sds)",
            "≈ weight",
            "",
        ),
    },
)


#: Smallest centre distance, in component sds, for two components to count as distinct modes.
#: Two equal Gaussians form two modes only beyond 2 sd; at 3 sd each Voronoi cell still holds
#: Φ(1.5) ≈ 93% of its component's mass. multimodal, multimodal4 and gmm1d sit at 4 sd, ring8
#: (radius 3, sd 0.3) at 7.7 sd; x_shaped (coincident centres) at 0.
MIN_SEPARATION_SDS = 3.0

#: Radius of a mode's neighbourhood in Mahalanobis units of its component.
MODE_RADIUS_SDS = 3.0


def separated_modes(means: np.ndarray, covariances: np.ndarray) -> bool:
    """Whether every pair of centres is at least ``MIN_SEPARATION_SDS`` sds apart.

    For centres μ_j, μ_k with unit direction u = (μ_k − μ_j)/‖μ_k − μ_j‖, the sd of component i
    along u is sqrt(uᵀ Σ_i u); the pair is separated when ‖μ_k − μ_j‖ ≥ c · max of the two sds.
    """
    j, k = np.triu_indices(means.shape[0], k=1)
    diff = means[k] - means[j]
    dist = np.linalg.norm(diff, axis=1)
    if np.any(dist == 0.0):
        return False
    u = diff / dist[:, None]
    sd_j = np.sqrt(np.einsum("pa,pab,pb->p", u, covariances[j], u))
    sd_k = np.sqrt(np.einsum("pa,pab,pb->p", u, covariances[k], u))
    return bool(np.all(dist >= MIN_SEPARATION_SDS * np.maximum(sd_j, sd_k)))


def mahalanobis_squared(x: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """(x_i − μ_k)ᵀ Σ_k⁻¹ (x_i − μ_k) for every draw and component, shape (n, K)."""
    diff = x[:, None, :] - means[None, :, :]
    return np.einsum("nka,kab,nkb->nk", diff, np.linalg.inv(covariances), diff)


def mode_masses(x: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """Fraction of the rows of x (n, d) in each mode's neighbourhood (nearest centre μ_k and
    within ``MODE_RADIUS_SDS`` Mahalanobis units of it); shape (K,), sums to at most 1."""
    x = as_samples(x, "x")
    sq = (x * x).sum(1, keepdims=True) - 2.0 * x @ means.T + (means * means).sum(1)
    nearest = np.argmin(sq, axis=1)
    maha = np.take_along_axis(mahalanobis_squared(x, means, covariances), nearest[:, None], 1)
    inside = maha[:, 0] <= MODE_RADIUS_SDS**2
    return np.bincount(nearest[inside], minlength=means.shape[0]) / x.shape[0]


def mode_coverage(
    x: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    weights: np.ndarray,
    min_share: float,
) -> dict[str, float]:
    """``mode_mass_{k}`` (q's mass in mode k's neighbourhood) and ``mode_coverage`` = fraction
    of the modes with mass ≥ ``min_share`` · w_k."""
    masses = mode_masses(x, means, covariances)
    covered = masses >= min_share * np.asarray(weights)
    return {f"mode_mass_{k}": float(m) for k, m in enumerate(masses)} | {
        "mode_coverage": float(covered.mean())
    }
