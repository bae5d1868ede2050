"""Quantile-based location, scale and tail errors, for targets without finite variances.

On ``student_t2d`` (ν = 2) sample sds and Pearson correlations do not converge, so
:mod:`sivi_engine.metrics.moments` is replaced by these (all 0 for q = p):

- ``median_error_iqr`` = max_j |med_q,j − med_p,j| / IQR_p,j (location, in reference IQRs);
- ``iqr_ratio_log_max`` = max_j |log(IQR_q,j / IQR_p,j)| (scale);
- ``tail_ratio_log_max`` = max_j max_α |log((Q_q,j(α) − med_q,j) / (Q_p,j(α) − med_p,j))| over
  α ∈ TAIL_LEVELS: the distance of each tail quantile from the median, q against p, on a log
  scale, so each of the four tails counts on its own.

These make the tails count where KL and MMD cannot: both weigh a region by its mass, and
the outer 2 % of p carry 2 % of the mass wherever they lie. (A coordinate-wise tail-compressing
map such as asinh((x − med_p)/IQR_p) applied to both samples changes neither: on student_t2d
against 10 000 exact draws, kNN KL moved by less than its Monte-Carlo sd, and MMD² of a
Gaussian with the target's IQR fell from 0.0093 to 0.0075 with the same sd, 0.0008.)
Measured on student_t2d, 5 seeds: exact draws give tail_ratio_log_max 0.25 ± 0.09 (n = 1000)
and 0.12 ± 0.05 (n = 10 000); a Gaussian with the same IQR gives 1.03 and 1.01.
"""

from __future__ import annotations

import numpy as np

from sivi_engine.metric_metadata import Catalogue, lower
from sivi_engine.metrics.arrays import as_samples

#: The names :func:`quantile_errors` returns.
DECLARED = Catalogue(
    sometimes={
        "median_error_iqr": lower(
            "largest |median_q − median_p| / IQR_p over coordinates (infinite-variance targets)"
        ).shown(("curve", 4)),
        "iqr_ratio_log_max": lower(
            "largest |log(IQR_q / IQR_p)| over coordinates (infinite-variance targets)"
        ),
        "tail_ratio_log_max": lower(
            "largest |log ratio| of the distances of the 1, 5, 95, 99 % quantiles from the"
            " median, q vs reference, over coordinates (infinite-variance targets)"
        ),
    }
)


#: Quantile levels of the tail measure.
TAIL_LEVELS = (0.01, 0.05, 0.95, 0.99)


def interquartile_range(a: np.ndarray) -> np.ndarray:
    """Q(0.75) − Q(0.25) per column (numpy's linear interpolation)."""
    upper, lower = np.quantile(a, [0.75, 0.25], axis=0)
    return upper - lower


def quantile_errors(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Median, IQR and tail-quantile errors of x (q) against y (reference p), module docstring."""
    x = as_samples(x, "x")
    y = as_samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    med_q, med_p = np.median(x, axis=0), np.median(y, axis=0)
    iqr_q, iqr_p = interquartile_range(x), interquartile_range(y)
    tail_q = np.quantile(x, TAIL_LEVELS, axis=0) - med_q
    tail_p = np.quantile(y, TAIL_LEVELS, axis=0) - med_p
    with np.errstate(divide="ignore", invalid="ignore"):  # a collapsed q: log 0 = −∞, error ∞
        return {
            "median_error_iqr": float(np.max(np.abs(med_q - med_p) / iqr_p)),
            "iqr_ratio_log_max": float(np.max(np.abs(np.log(iqr_q / iqr_p)))),
            "tail_ratio_log_max": float(np.max(np.abs(np.log(tail_q / tail_p)))),
        }
