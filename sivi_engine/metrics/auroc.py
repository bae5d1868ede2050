"""Area under the ROC curve of a score separating two samples, from ranks.

With n₋ negative scores a and n₊ positive scores b, the AUROC is the Mann–Whitney probability

    AUROC = P(B > A) + ½ P(B = A) = U / (n₊ n₋),    U = Σ_{i ∈ positives} rᵢ − n₊(n₊ + 1)/2,

rᵢ the rank of a positive score among all n₋ + n₊ (1-based, tied scores sharing the mean of
their ranks), which is the area under the empirical ROC curve with ties interpolated linearly
(Hanley & McNeil 1982, "The meaning and use of the area under a ROC curve").
"""

from __future__ import annotations

import numpy as np


def mid_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the highest rank of each group of equal values
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(B > A) + ½ P(B = A) for A a negative and B a positive score (module docstring)."""
    a = np.asarray(negatives, dtype=np.float64).reshape(-1)
    b = np.asarray(positives, dtype=np.float64).reshape(-1)
    if a.size == 0 or b.size == 0:
        raise ValueError("auroc needs at least one negative and one positive score")
    ranks = mid_ranks(np.concatenate([a, b]))
    u = ranks[a.size :].sum() - b.size * (b.size + 1) / 2.0
    return float(u / (a.size * b.size))
