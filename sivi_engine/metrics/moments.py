"""Errors of the marginal means and standard deviations of q relative to the reference."""

from __future__ import annotations

import numpy as np

from sivi_engine.metric_metadata import Catalogue, ideal, lower
from sivi_engine.metrics.arrays import as_samples

#: The names :func:`moment_errors` returns.
DECLARED = Catalogue(
    sometimes={
        "mean_error_std": lower(
            "largest |mean_q − mean_p| / sd_p over coordinates (mean error in reference sds)"
        ).shown(("curve", 3)),
        "sd_ratio_log_max": lower("largest |log(sd_q / sd_p)| over coordinates"),
        "sd_ratio_mean": ideal("mean of sd_q / sd_p over coordinates", 1),
    }
)


def moment_errors(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Per-coordinate first and second moment errors of x (q) against y (reference p).

    ``mean_error_std`` = max_j |mean_q,j − mean_p,j| / sd_p,j (mean error in reference sds);
    ``sd_ratio_log_max`` = max_j |log(sd_q,j / sd_p,j)|; ``sd_ratio_mean`` = mean_j sd_q,j/sd_p,j.
    Standard deviations use ddof = 1.
    """
    x = as_samples(x, "x")
    y = as_samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    sd_q = np.std(x, axis=0, ddof=1)
    sd_p = np.std(y, axis=0, ddof=1)
    ratio = sd_q / sd_p
    return {
        "mean_error_std": float(np.max(np.abs(x.mean(axis=0) - y.mean(axis=0)) / sd_p)),
        "sd_ratio_log_max": float(np.max(np.abs(np.log(ratio)))),
        "sd_ratio_mean": float(np.mean(ratio)),
    }
