"""Sliced Wasserstein distance between two samples, in units of the reference's spread.

Rabin, Peyré, Delon & Bernot (2011), "Wasserstein barycenter and its application to texture
mixing"; Bonneel et al. (2015), J. Math. Imaging Vis. 51, eq. (2). PVI (Lim & Johansen 2024)
scores its toy experiments with a sliced Wasserstein distance.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sivi_engine.metric_metadata import Catalogue, divergence
from sivi_engine.metrics.arrays import as_samples

#: What :mod:`sivi_engine.metrics` names this module's estimate.
DECLARED = Catalogue(
    sometimes={
        "sliced_w1": divergence(
            "sliced 1-Wasserstein distance between q and the reference over 200 random"
            " directions, coordinates in reference sds (for a Gaussian, sds off by a factor s"
            " score 0.8·|1 − s|)"
        ).shown(("headline", 2), ("curve", 1)),
    }
)


def wasserstein_1d(u: np.ndarray, v: np.ndarray, p: int = 1) -> np.ndarray:
    """W_p^p between the empirical laws of each row of ``u`` (L, n) and of ``v`` (L, m):
    ∫₀¹ |F_u⁻¹(t) − F_v⁻¹(t)|^p dt, exact for empirical quantile functions (piecewise constant
    between the levels i/n and j/m), so n and m may differ."""
    return _wasserstein_sorted(np.sort(u, axis=1), np.sort(v, axis=1), p)


def _wasserstein_sorted(u: np.ndarray, v: np.ndarray, p: int) -> np.ndarray:
    """:func:`wasserstein_1d` of rows already sorted."""
    n, m = u.shape[1], v.shape[1]
    levels = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(levels, prepend=0.0)
    # the quantile at t ∈ (levels[k−1], levels[k]] is the ⌈t·n⌉-th order statistic
    middle = levels - widths / 2
    index_u = np.minimum(np.ceil(middle * n).astype(int) - 1, n - 1)
    index_v = np.minimum(np.ceil(middle * m).astype(int) - 1, m - 1)
    return (np.abs(u[:, index_u] - v[:, index_v]) ** p * widths).sum(axis=1)


def random_directions(dim: int, count: int, seed: int) -> np.ndarray:
    """``count`` directions uniform on the unit sphere of R^dim (normalised Gaussians), shape
    (count, dim)."""
    directions = np.random.default_rng(seed).standard_normal((count, dim))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class SlicedReference:
    """The reference side of the sliced distance, computed once for any number of q samples:
    the directions, divided by the reference's per-coordinate sds, and the reference's sorted
    projections on them (L, m)."""

    directions: np.ndarray
    projections: np.ndarray


def sliced_reference(y: np.ndarray, num_projections: int = 200, seed: int = 0) -> SlicedReference:
    """:class:`SlicedReference` of the reference sample ``y`` (m, d)."""
    y = as_samples(y, "y")
    if num_projections < 1:
        raise ValueError(f"num_projections must be >= 1, got {num_projections}")
    scale = np.std(y, axis=0, ddof=1)
    if not np.all(scale > 0):
        raise ValueError("sliced_wasserstein: a coordinate of the reference has zero spread")
    directions = random_directions(y.shape[1], num_projections, seed) / scale
    return SlicedReference(directions, np.sort(directions @ y.T, axis=1))


def sliced_wasserstein_against(x: np.ndarray, reference: SlicedReference, p: int = 1) -> float:
    """SW_p of the sample ``x`` against a :class:`SlicedReference` (:func:`sliced_wasserstein`)."""
    x = as_samples(x, "x")
    if x.shape[1] != reference.directions.shape[1]:
        raise ValueError(
            f"x and y differ in dimension: {x.shape[1]} vs {reference.directions.shape[1]}"
        )
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    projected = np.sort(reference.directions @ x.T, axis=1)
    return float(_wasserstein_sorted(projected, reference.projections, p).mean() ** (1 / p))


def sliced_wasserstein(
    x: np.ndarray, y: np.ndarray, num_projections: int = 200, seed: int = 0, p: int = 1
) -> float:
    """SW_p(q, p) = (E_θ W_p^p(θᵀx, θᵀy))^(1/p) over θ uniform on the sphere, by
    ``num_projections`` fixed-seed directions, after dividing each coordinate by the reference
    ``y``'s standard deviation: a distance in reference sds whatever the coordinates' scales (on
    a 22-D logistic-regression posterior the coordinates' sds differ by a factor of 4).

    For a Gaussian reference with independent coordinates and a q whose sds are all off by a
    factor s, SW₁ = √(2/π)·|1 − s| and SW₂ = |1 − s| in the limit of many draws; a q shifted by
    δ sds in one of d coordinates has SW₂ = |δ|/√d. The default p = 1 is the robust one: one
    banana draw 26 units out moved SW₂ of 1000 exact draws from 0.09 to 0.16 and SW₁ not at all
    (measured). The empirical estimate is biased upwards by finite samples (like the other
    sample metrics, read it against the reference's own noise floor).
    """
    return sliced_wasserstein_against(x, sliced_reference(y, num_projections, seed), p)
