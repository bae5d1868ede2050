"""The sanity gate: a run whose fit is grossly wrong where the reference can tell is suspect.

A rule compares one value of a run's metrics with an :class:`EvaluationSettings` threshold and
needs one kind of evidence from the reference:

- ``moments``: the reference's marginals are trusted — i.i.d. draws (engine ``exact``) or Stan
  NUTS draws whose stored diagnostics passed the gate (:mod:`sivi_engine.reference.diagnostics`).
  Not SGLD: converged chains of a biased sampler pass R̂/ESS all the same.
- ``predictive``: any reference; the held-out log predictive density is scored on data, so a run
  far below the reference's is worse whatever the reference's own error.

A rule applies only where its metric exists: mean error and sd ratio on finite-variance targets,
median error and IQR ratio (:mod:`sivi_engine.metrics.quantiles`) on infinite-variance ones,
the LPD drop on targets with held-out data. A NaN value fails its rule.

Thresholds (defaults), from what sane and broken runs produce (issue 9; CPU runs of 1000
iterations): sane fits are 0.17-0.98 posterior sds off in the mean (KSIVI, Gaussian VI on
banana and ring8; KSIVI on waveform 0.55) and a broken KSIVI on waveform 67, hence
``gate_mean_error_sd`` = 3 (a Gaussian mode-collapsed onto one of ring8's modes is 1.4 off);
``gate_median_error_iqr`` = 2, about the same distance for a Gaussian (3 sd = 2.2 IQR). Sane
|log sd ratios| reach 1.34 (a Gaussian on banana, which cannot follow the curved ridge; KSIVI
1.1), so ``gate_log_scale_ratio`` = log 10 flags only fits collapsed or inflated tenfold.
Held-out LPD: a good waveform fit is 0.013 nats per test point below NUTS (−0.353 vs −0.34), the
broken one 2.2 below (−2.53), hence ``gate_lpd_drop`` = 0.5 nats (below −0.84 on waveform, worse
than predicting ½ for every point).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

from sivi_engine.metrics.context import EvaluationSettings

Evidence = Literal["moments", "predictive"]


def _entry(name: str) -> Callable[[Mapping[str, float]], float | None]:
    return lambda metrics: metrics.get(name)


def lpd_drop(metrics: Mapping[str, float]) -> float | None:
    """reference_test_log_likelihood − test_log_likelihood (nats per test point), if both exist."""
    if "test_log_likelihood" not in metrics or "reference_test_log_likelihood" not in metrics:
        return None
    return metrics["reference_test_log_likelihood"] - metrics["test_log_likelihood"]


@dataclasses.dataclass(frozen=True)
class GateRule:
    """``value(metrics) <= settings.<setting>`` must hold when the reference gives ``evidence``."""

    name: str
    setting: str
    evidence: Evidence
    value: Callable[[Mapping[str, float]], float | None]


GATE_RULES = (
    GateRule("mean_error_std", "gate_mean_error_sd", "moments", _entry("mean_error_std")),
    GateRule("sd_ratio_log_max", "gate_log_scale_ratio", "moments", _entry("sd_ratio_log_max")),
    GateRule("median_error_iqr", "gate_median_error_iqr", "moments", _entry("median_error_iqr")),
    GateRule("iqr_ratio_log_max", "gate_log_scale_ratio", "moments", _entry("iqr_ratio_log_max")),
    GateRule("test_lpd_drop", "gate_lpd_drop", "predictive", lpd_drop),
)


def trusted_evidence(engine: str, diagnostics: Mapping[str, Any]) -> frozenset[Evidence]:
    """What a reference with this ``engine`` attribute and stored ``diagnostics`` can vouch for
    (module docstring): Stan engines are labelled ``stan-nuts/<backend>``."""
    gate_passed = diagnostics.get("gate", {}).get("passed") is True
    moments = engine == "exact" or (engine.startswith("stan") and gate_passed)
    return frozenset({"predictive", "moments"} if moments else {"predictive"})


def gate_reasons(
    metrics: Mapping[str, float], evidence: frozenset[Evidence], settings: EvaluationSettings
) -> list[str]:
    """The violated rules, each naming the value and the threshold setting; [] for a sane run."""
    reasons = []
    for rule in GATE_RULES:
        value = rule.value(metrics)
        threshold = getattr(settings, rule.setting)
        if rule.evidence in evidence and value is not None and not value <= threshold:
            reasons.append(f"{rule.name} = {value:.4g} (exceeds {rule.setting} = {threshold:.4g})")
    return reasons


def divergence_reasons(status: str, finite: bool) -> list[str]:
    """Why a run has no scores: its training status is not ``ok`` or its draws are not finite."""
    reasons = [] if status == "ok" else [f"training status {status!r}"]
    return reasons + ([] if finite else ["non-finite draws"])
