"""Predictive calibration of a classifier on held-out data (the metric catalogue:
docs/architecture.md#metric-formulas).

A classifier's posterior predictive forecasts one event per test point with probability p̄ᵢ,
and oᵢ ∈ {0, 1} says whether it happened: for a binary classifier the event is y*ᵢ = 1 (p̄ᵢ =
P(y*ᵢ = 1 | x*ᵢ, data), oᵢ = y*ᵢ, the test labels); for a multi-class one it is "the top label is
right" (p̄ᵢ = maxₖ P(y*ᵢ = k | x*ᵢ, data), the top-label confidence, and oᵢ = 1[argmaxₖ = y*ᵢ],
which the target returns as ``correct``; Guo et al. 2017, "On calibration of modern neural
networks"). Equal-width bins B₁ = [0, 1/M], B_m = ((m − 1)/M, m/M] of p̄, and per non-empty bin

    conf(B) = mean of p̄ᵢ over i ∈ B,    freq(B) = mean of oᵢ over i ∈ B.

The reliability curve is freq against conf (on the diagonal for a calibrated predictive), and
the expected calibration error (Naeini, Cooper & Hauskrecht 2015) is its mass-weighted gap

    ECE = Σ_B (|B| / n) · |freq(B) − conf(B)|.

Binary bins are taken on the probability of class 1, as in scikit-learn's
``calibration_curve``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from sivi_engine.metric_metadata import Catalogue, lower

#: The name :func:`predictive_scores` adds to a classifier's scores.
DECLARED = Catalogue(
    sometimes={
        "ece": lower(
            "expected calibration error of the posterior predictive on held-out data (of the"
            " top label's probability for a multi-class classifier)"
        ).shown(("predictive", 3)),
    }
)


#: Bins of the reliability curve and of the ECE.
CALIBRATION_BINS = 10


@dataclasses.dataclass(frozen=True)
class ReliabilityCurve:
    """Per bin B_1..B_M: mean predicted probability and observed frequency (NaN for an empty
    bin), and the count."""

    confidence: np.ndarray
    frequency: np.ndarray
    count: np.ndarray

    def filled(self) -> ReliabilityCurve:
        """The non-empty bins only."""
        keep = self.count > 0
        return ReliabilityCurve(self.confidence[keep], self.frequency[keep], self.count[keep])


def reliability_curve(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS
) -> ReliabilityCurve:
    """conf(B) and freq(B) on ``bins`` equal-width bins of [0, 1] (labels: the outcomes in
    {0, 1}); NaN for an empty bin."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"probabilities {p.shape} and labels {y.shape} must be equal 1-D shapes")
    index = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)  # right-closed bins
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):  # 0 / 0 in an empty bin is its NaN
        confidence = np.bincount(index, weights=p, minlength=bins) / count
        frequency = np.bincount(index, weights=y, minlength=bins) / count
    return ReliabilityCurve(confidence, frequency, count)


def expected_calibration_error(curve: ReliabilityCurve) -> float:
    """ECE = Σ_B (|B| / n) |freq(B) − conf(B)| over the non-empty bins."""
    curve = curve.filled()
    weights = curve.count / curve.count.sum()
    return float(np.sum(weights * np.abs(curve.frequency - curve.confidence)))


def calibration_outcomes(scores: Mapping[str, Any], labels: np.ndarray) -> np.ndarray:
    """oᵢ of the events a classifier's ``probabilities`` forecast: its ``correct`` indicator
    where it returns one (multi-class, top label), else the test ``labels`` (binary)."""
    return np.asarray(scores.get("correct", labels), dtype=np.float64)


def predictive_scores(
    scores: Mapping[str, Any], labels: np.ndarray, bins: int = CALIBRATION_BINS
) -> dict[str, float]:
    """The scalar entries of ``scores`` (the output of a target's ``predictive``) and, when it
    holds ``probabilities`` p̄ (a classifier), their ``ece`` against the outcomes
    (:func:`calibration_outcomes` of the test ``labels``)."""
    out = {name: float(value) for name, value in scores.items() if np.ndim(value) == 0}
    if "probabilities" in scores:
        outcomes = calibration_outcomes(scores, labels)
        curve = reliability_curve(scores["probabilities"], outcomes, bins)
        out["ece"] = expected_calibration_error(curve)
    return out
