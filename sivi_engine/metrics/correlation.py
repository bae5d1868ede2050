"""Comparison of the pairwise correlation structure of q with that of the reference."""

from __future__ import annotations

import numpy as np

from sivi_engine.metrics.arrays import as_samples


def pairwise_correlations(a: np.ndarray) -> np.ndarray:
    """The d(d−1)/2 Pearson correlations ρ_jk, j < k, of the columns of ``a`` (row-major order)."""
    d = a.shape[1]
    corr = np.corrcoef(a, rowvar=False)
    return corr[np.triu_indices(d, k=1)]


def correlation_comparison(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Compare the pairwise Pearson correlations ρ_q of x (q) with ρ_p of y (reference).

    ``corr_max_abs_diff`` = max_pairs |ρ_q − ρ_p| (d ≥ 2); with at least three pairs (d ≥ 3) also
    ``corr_pearson_r`` = Pearson r between the vectors ρ_q and ρ_p, and ``corr_slope`` = the
    least-squares slope b of ρ_q ≈ a + b ρ_p (1 and 1 for a perfect match). Keys that are
    undefined are omitted: d = 1 gives {}, and r / slope are dropped when ρ_p (or, for r, ρ_q)
    has zero spread.
    """
    x = as_samples(x, "x")
    y = as_samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    if x.shape[1] < 2:
        return {}
    rq = pairwise_correlations(x)
    rp = pairwise_correlations(y)
    out = {"corr_max_abs_diff": float(np.max(np.abs(rq - rp)))}
    if rq.size >= 3:
        dq, dp = rq - rq.mean(), rp - rp.mean()
        sxx, syy, sxy = float(dp @ dp), float(dq @ dq), float(dp @ dq)
        if sxx > 0:
            out["corr_slope"] = sxy / sxx
            if syy > 0:
                out["corr_pearson_r"] = sxy / np.sqrt(sxx * syy)
    return out


def rank_correlation_comparison(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """:func:`correlation_comparison` of Spearman's rank correlations (Pearson's ρ of the
    column ranks of each sample; Spearman 1904), keys prefixed ``rank_``. For targets without
    finite variances, where Pearson correlations of samples do not converge: on student_t2d
    the Pearson |Δρ| of exact draws was 0.03 ± 0.04 at n = 10 000, the rank one 0.004 ± 0.003."""
    from scipy.stats import rankdata  # 1.1 s to import: only for infinite-variance targets

    ranked = correlation_comparison(
        rankdata(as_samples(x, "x"), axis=0), rankdata(as_samples(y, "y"), axis=0)
    )
    return {f"rank_{name}": value for name, value in ranked.items()}
