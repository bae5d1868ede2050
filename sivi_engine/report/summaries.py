"""Numeric summaries behind the report's per-target views: pure numpy in, arrays and floats out.

- :func:`path_band`: pointwise posterior mean and central credible band of a path-valued
  posterior (the diffusion's latent states);
- :class:`CorrelationPairs`: the stored pairwise correlations of q and of the reference, with
  the run's ``corr_pearson_r`` / ``corr_slope``;
- :class:`ReliabilityLine`: a classifier's stored reliability curve and its ECE.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def finite_rows(draws: np.ndarray) -> np.ndarray:
    """The rows of ``draws`` (n, d) without a NaN or ±inf (a diverged run may hold some)."""
    draws = np.asarray(draws, dtype=np.float64)
    return draws[np.isfinite(draws).all(axis=1)]


@dataclasses.dataclass(frozen=True)
class PathBand:
    """Per coordinate k: the mean (1/S) Σ_s u_k^(s) and the empirical quantiles ``lower`` =
    Q̂_k((1 − level)/2), ``upper`` = Q̂_k((1 + level)/2) of the draws (numpy's linear
    interpolation)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float


def path_band(draws: np.ndarray, level: float = 0.95) -> PathBand:
    """Pointwise mean and central ``level`` band of draws (S, K) of a path; non-finite rows are
    dropped first (a band of NaN when none is left). For level 0.95 the band is the 2.5 and 97.5
    percentiles, ≈ m ± 1.96 s for a Gaussian marginal N(m, s²)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    draws = finite_rows(draws)
    if len(draws) == 0:
        nan = np.full(np.shape(draws)[1], math.nan)
        return PathBand(nan, nan.copy(), nan.copy(), level)
    lower, upper = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return PathBand(draws.mean(axis=0), lower, upper, level)


@dataclasses.dataclass(frozen=True)
class CorrelationPairs:
    """The d(d−1)/2 pairwise correlations ρ_p (reference) and ρ_q (method) the evaluation
    stored, pair order j < k row-major, and its ``pearson_r`` = corr(ρ_q, ρ_p) and ``slope`` =
    least-squares slope of ρ_q on ρ_p (NaN where undefined); ``kind`` names the correlation
    (``corr``: Pearson, ``rank_corr``: Spearman)."""

    reference: np.ndarray
    method: np.ndarray
    pearson_r: float
    slope: float
    kind: str


@dataclasses.dataclass(frozen=True)
class ReliabilityCurve:
    """A stored reliability curve: per calibration bin the mean predicted probability, the
    observed frequency and the count (NaN and 0 in an empty bin)."""

    confidence: np.ndarray
    frequency: np.ndarray
    count: np.ndarray

    def filled(self) -> ReliabilityCurve:
        """The non-empty bins only."""
        keep = np.nan_to_num(self.count) > 0
        return ReliabilityCurve(self.confidence[keep], self.frequency[keep], self.count[keep])


@dataclasses.dataclass(frozen=True)
class ReliabilityLine:
    """One curve of a reliability diagram: the binned curve (non-empty bins) and its ECE."""

    curve: ReliabilityCurve
    ece: float
