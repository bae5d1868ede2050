"""Marginal calibration: how often reference draws fall in q's central credible intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sivi_engine.metric_metadata import Catalogue, MetricInfo, ideal, lower
from sivi_engine.metrics.arrays import as_samples

#: Levels of the intervals :func:`marginal_coverage` scores by default.
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)


def coverage_info(percent: str) -> MetricInfo:
    """The entry of ``coverage_<percent>``."""
    return ideal(
        f"fraction of reference draws inside q's central {percent}% marginal interval,"
        " mean over coordinates",
        int(percent) / 100,
    )


#: The names :func:`marginal_coverage` returns.
DECLARED = Catalogue(
    sometimes={
        "coverage_error": lower(
            "mean over the levels "
            + ", ".join(f"{level:g}" for level in COVERAGE_LEVELS)
            + " of |coverage − level|"
        )
    },
    numbered={r"coverage_(\d+)": coverage_info},
)


def coverage_key(level: float) -> str:
    """Result key of a level: 0.9 → ``coverage_90``."""
    return f"coverage_{round(100 * level)}"


def marginal_coverage(
    x: np.ndarray, y: np.ndarray, levels: Sequence[float] = COVERAGE_LEVELS
) -> dict[str, float]:
    """Coverage of q's central marginal intervals by the reference draws.

    For level α and coordinate j, the interval [Q̂_j((1−α)/2), Q̂_j((1+α)/2)] uses x's empirical
    quantiles (numpy's linear interpolation); ``coverage_<100α>`` is the fraction of y's j-th
    coordinates inside it, averaged over j (nominal: α when q = p). ``coverage_error`` is the
    mean over levels of |coverage − α|. See e.g. Talts et al. (2018), "Validating Bayesian
    inference algorithms with simulation-based calibration", for interval coverage as a check.
    """
    x = as_samples(x, "x")
    y = as_samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    out: dict[str, float] = {}
    errors = []
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"coverage levels must lie in (0, 1), got {level}")
        lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2], axis=0)
        inside = (y >= lo) & (y <= hi)
        coverage = float(inside.mean(axis=0).mean())
        out[coverage_key(level)] = coverage
        errors.append(abs(coverage - level))
    out["coverage_error"] = float(np.mean(errors))
    return out
