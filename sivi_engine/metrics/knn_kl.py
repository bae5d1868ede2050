"""k-nearest-neighbour estimator of the Kullback-Leibler divergence between two samples.

Wang, Kulkarni & Verdú (2009), "Divergence estimation for multidimensional densities via
k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), eq. (5).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from sivi_engine.metric_metadata import Catalogue, divergence
from sivi_engine.metrics.arrays import as_samples

#: What :mod:`sivi_engine.metrics` names this module's estimates.
DECLARED = Catalogue(
    sometimes={
        "kl_qp_knn": divergence(
            "KL(q‖p), k-nearest-neighbour estimate from samples (can dip below 0)"
        ),
        "kl_pq_knn": divergence(
            "KL(p‖q), k-nearest-neighbour estimate from samples (can dip below 0)"
        ),
    }
)


#: Rows of ``points`` per block in :func:`kth_distance_exhaustive`: bounds the block of
#: distances, e.g. 1024 × 10000 float64 = 82 MB.
DISTANCE_BLOCK = 1024


def kth_distance_tree(points: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``points`` to its k-th nearest row of ``reference`` (k-d tree)."""
    dist, _ = cKDTree(reference).query(points, k=[k], workers=-1)
    return dist[:, 0]


def kth_distance_exhaustive(
    points: np.ndarray, reference: np.ndarray, k: int, device: str
) -> np.ndarray:
    """The same distances from all pairwise distances, in float64 torch on ``device``, block by
    block of rows; one transfer to the host at the end."""
    ref = torch.as_tensor(reference, dtype=torch.float64, device=device)
    rows = torch.as_tensor(points, dtype=torch.float64, device=device)
    blocks = [
        torch.cdist(block, ref).kthvalue(k, dim=1).values for block in rows.split(DISTANCE_BLOCK)
    ]
    return torch.cat(blocks).cpu().numpy()


def knn_kl_divergence(x: np.ndarray, y: np.ndarray, k: int = 1, device: str = "cpu") -> float:
    """k-NN estimate of KL(P‖Q) from x ~ P, shape (n, d), and y ~ Q, shape (m, d).

    D̂ = (d/n) Σᵢ log(ν_k(i)/ρ_k(i)) + log(m/(n−1)), where ρ_k(i) is the distance from xᵢ to
    its k-th nearest neighbour among the other rows of x and ν_k(i) the distance to its k-th
    nearest neighbour in y (Wang, Kulkarni & Verdú 2009, eq. 5). Consistent as n, m → ∞; the
    finite-sample bias grows with d because the neighbour balls shrink only like n^(−1/d).

    Duplicate rows within each sample are removed first (n and m are the de-duplicated sizes),
    so ρ_k > 0. A row shared by x and y would give ν_k = 0 and −∞; with independent continuous
    samples that has probability zero.

    Neighbours are found with a k-d tree on the CPU and by exhaustive distances on a GPU
    (``device``), where O(nm) distance blocks are cheap and the data stay on the device.
    """
    x = np.unique(as_samples(x, "x"), axis=0)
    y = np.unique(as_samples(y, "y"), axis=0)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    n, d = x.shape
    m = y.shape[0]
    if k < 1 or n < k + 1 or m < k:
        raise ValueError(f"k={k} needs at least {k + 1} distinct x rows and {k} distinct y rows")

    def kth_distance(reference: np.ndarray, j: int) -> np.ndarray:
        if device == "cpu":
            return kth_distance_tree(x, reference, j)
        return kth_distance_exhaustive(x, reference, j, device)

    rho = kth_distance(x, k + 1)  # the first neighbour of xᵢ in x is xᵢ itself
    nu = kth_distance(y, k)
    return float(d * np.mean(np.log(nu) - np.log(rho)) + np.log(m / (n - 1)))
