"""Evaluation metrics comparing a method's samples q with reference draws p.

The estimators live one per module as pure numpy functions, each module declaring the names
it gives its estimates with their metadata (``DECLARED``, :mod:`sivi_engine.metric_metadata`).
This package registers *metric groups* in :data:`METRICS`: each maps an
:class:`EvaluationContext` to a dict of named floats and carries the declarations of the names
it returns, and :func:`evaluate_all` merges every group's results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import torch

from sivi_engine.metric_metadata import Catalogue
from sivi_engine.metrics import (
    calibration,
    correlation,
    density_kl,
    knn_kl,
    mmd,
    modes,
    moments,
    predictive,
    quantiles,
)
from sivi_engine.metrics import sliced_wasserstein as sliced
from sivi_engine.metrics.arrays import subsample
from sivi_engine.metrics.calibration import marginal_coverage
from sivi_engine.metrics.context import EvaluationContext, EvaluationSettings, draws_to_score
from sivi_engine.metrics.correlation import (
    compared_pairs,
    correlation_comparison,
    rank_correlation_comparison,
)
from sivi_engine.metrics.density_kl import density_kl_divergence, kozachenko_leonenko_entropy
from sivi_engine.metrics.knn_kl import knn_kl_divergence
from sivi_engine.metrics.mmd import (
    MULTISCALE_FACTORS,
    KernelReference,
    kernel_reference,
    median_bandwidth,
    mmd_squared,
    mmd_squared_each,
)
from sivi_engine.metrics.modes import mode_coverage, separated_modes
from sivi_engine.metrics.moments import moment_errors
from sivi_engine.metrics.predictive import (
    calibration_outcomes,
    expected_calibration_error,
    predictive_scores,
    reliability_curve,
)
from sivi_engine.metrics.quantiles import quantile_errors
from sivi_engine.metrics.sliced_wasserstein import (
    sliced_reference,
    sliced_wasserstein,
    sliced_wasserstein_against,
)
from sivi_engine.registry import Registry
from sivi_engine.targets.capabilities import MixtureComponents


@dataclasses.dataclass(frozen=True)
class MetricGroup:
    """Estimates computed together from one :class:`EvaluationContext`, and the declarations
    of every name they may return."""

    compute: Callable[[EvaluationContext], dict[str, float]]
    declared: Catalogue

    def __call__(self, ctx: EvaluationContext) -> dict[str, float]:
        return self.compute(ctx)


METRICS: Registry[MetricGroup] = Registry("metric")


def metric_group(
    name: str, declared: Catalogue
) -> Callable[[Callable[[EvaluationContext], dict[str, float]]], MetricGroup]:
    """Decorator: register a function of the context as the metric group ``name``."""

    def register(compute: Callable[[EvaluationContext], dict[str, float]]) -> MetricGroup:
        return METRICS.register(name)(MetricGroup(compute, declared))

    return register


@metric_group("knn_kl", knn_kl.DECLARED)
def _knn_kl(ctx: EvaluationContext) -> dict[str, float]:
    """kNN KL in both directions on fixed-seed subsamples of at most ``max_points_knn`` rows."""
    s = ctx.settings
    rng = np.random.default_rng(s.seed)
    q = subsample(ctx.samples, s.max_points_knn, rng)
    p = subsample(ctx.reference, s.max_points_knn, rng)
    return {
        "kl_qp_knn": knn_kl_divergence(q, p, k=s.knn_k, device=ctx.device),
        "kl_pq_knn": knn_kl_divergence(p, q, k=s.knn_k, device=ctx.device),
    }


@metric_group("density_kl", density_kl.DECLARED)
def _density_kl(ctx: EvaluationContext) -> dict[str, float]:
    """KL(q‖p) = −Ĥ(q) − E_q log p against the normalised target, for targets of dimension
    ≤ 2 (where the entropy estimator's bias was measured below its Monte-Carlo error; it grows
    like n^(−2/d) with the dimension)."""
    target = ctx.target
    if target.dim > 2 or not target.normalised:
        return {}

    def log_density(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            lp = target.log_prob(torch.as_tensor(points, dtype=torch.float64))
        return lp.detach().cpu().numpy().astype(np.float64)

    return {"kl_qp_density": density_kl_divergence(ctx.samples, log_density)}


@metric_group("mmd", mmd.DECLARED)
def _mmd(ctx: EvaluationContext) -> dict[str, float]:
    """Unbiased MMD² with the median-distance bandwidth ℓ of the reference sample, and with the
    mean of the Gaussian kernels of widths ℓ × :data:`MULTISCALE_FACTORS`."""
    s = ctx.settings

    def compute() -> tuple[float, KernelReference]:
        ell = median_bandwidth(ctx.reference, max_points=s.max_points_mmd, seed=s.seed)
        bandwidths = [factor * ell for factor in MULTISCALE_FACTORS]
        return ell, kernel_reference(
            ctx.reference, bandwidths, s.max_points_mmd, s.seed, ctx.device
        )

    ell, reference = ctx.reference_side("mmd", compute)
    each = mmd_squared_each(ctx.samples, reference, s.max_points_mmd, s.seed)
    return {
        "mmd2": float(each[MULTISCALE_FACTORS.index(1.0)]),
        "mmd2_multiscale": float(each.mean()),
        "mmd_bandwidth": ell,
    }


@metric_group("sliced_wasserstein", sliced.DECLARED)
def _sliced_wasserstein(ctx: EvaluationContext) -> dict[str, float]:
    """Sliced 1-Wasserstein distance in reference sds, for targets with finite variance (the
    scale is the reference's sd)."""
    if ctx.target.infinite_variance:
        return {}
    s = ctx.settings
    reference = ctx.reference_side(
        "sliced", lambda: sliced_reference(ctx.reference, s.sliced_projections, s.seed)
    )
    return {"sliced_w1": sliced_wasserstein_against(ctx.samples, reference)}


@metric_group("correlation", correlation.DECLARED)
def _correlation(ctx: EvaluationContext) -> dict[str, float]:
    """Pearson correlations; rank (Spearman) ones where the target has no finite variance."""
    if ctx.target.infinite_variance:
        return rank_correlation_comparison(ctx.samples, ctx.reference)
    return correlation_comparison(ctx.samples, ctx.reference)


@metric_group("coverage", calibration.DECLARED)
def _coverage(ctx: EvaluationContext) -> dict[str, float]:
    return marginal_coverage(ctx.samples, ctx.reference)


@metric_group("moments", moments.DECLARED | quantiles.DECLARED)
def _moments(ctx: EvaluationContext) -> dict[str, float]:
    """Mean and sd errors; median, IQR and tail-quantile errors where the target has no
    finite variance (:mod:`sivi_engine.metrics.quantiles`)."""
    if ctx.target.infinite_variance:
        return quantile_errors(ctx.samples, ctx.reference)
    return moment_errors(ctx.samples, ctx.reference)


@metric_group("modes", modes.DECLARED)
def _modes(ctx: EvaluationContext) -> dict[str, float]:
    """Mode coverage, for Gaussian-mixture targets whose component centres are separated."""

    target = ctx.target
    if not isinstance(target, MixtureComponents):
        return {}
    means, covariances = target.component_means(), target.component_covariances()
    if means.shape[0] < 2 or not separated_modes(means, covariances):
        return {}
    weights, share = target.component_weights(), ctx.settings.mode_min_share
    return mode_coverage(ctx.samples, means, covariances, weights, share)


@metric_group("predictive", predictive.DECLARED)
def _predictive(ctx: EvaluationContext) -> dict[str, float]:
    """Held-out predictive scores of q's draws, for targets with held-out data
    (:class:`~sivi_engine.targets.capabilities.HeldOutData`): test log-likelihood and accuracy
    or RMSE as the target defines them, and for a classifier (predictive probabilities
    returned) the expected calibration error. The same scores of the reference
    (:attr:`EvaluationContext.predictive`) are prefixed ``reference_``. The target declares
    its own scores (``HeldOutData.predictive_metrics``); this group, the ECE."""
    if ctx.predictive is None:
        return {}
    labels, bins = ctx.target.test_response(), ctx.settings.calibration_bins
    own, of_reference = (predictive_scores(scores, labels, bins) for scores in ctx.predictive)
    return own | {f"reference_{name}": value for name, value in of_reference.items()}


#: What :func:`reliability_curves` stores per calibration bin, from a ReliabilityCurve.
RELIABILITY_FIELDS = ("confidence", "frequency", "count")


def reliability_curves(ctx: EvaluationContext) -> dict[str, np.ndarray]:
    """A classifier's reliability curve on ``calibration_bins`` bins, q's (``confidence``,
    ``frequency``, ``count``) and the reference's (the same, prefixed ``reference_``), from the
    predictive probabilities and outcomes behind the ``ece`` metrics (the top label's for a
    multi-class target, :mod:`.predictive`); NaN in an empty bin. None for a target
    that is not a classifier with held-out data."""
    if ctx.predictive is None or "probabilities" not in ctx.predictive[0]:
        return {}
    labels, bins = ctx.target.test_response(), ctx.settings.calibration_bins
    curves = {}
    for prefix, scores in zip(("", "reference_"), ctx.predictive):
        outcomes = calibration_outcomes(scores, labels)
        curve = reliability_curve(scores["probabilities"], outcomes, bins)
        curves |= {f"{prefix}{name}": getattr(curve, name) for name in RELIABILITY_FIELDS}
    return curves


#: Largest dimension whose pairwise correlations a MetricSet stores, d(d − 1)/2 values (4950 at
#: the diffusion's 100; a BNN's 10⁴ weights would give 5·10⁷ pairs and no pattern to show).
PAIRS_MAX_DIM = 100


def correlation_pairs(ctx: EvaluationContext) -> dict[str, np.ndarray]:
    """The pairwise correlations behind the ``correlation`` group's metrics, q's and the
    reference's (:func:`~sivi_engine.metrics.correlation.compared_pairs`: Spearman's on a
    target without finite variance), for 3 ≤ d ≤ :data:`PAIRS_MAX_DIM`; none otherwise."""
    if not 3 <= ctx.target.dim <= PAIRS_MAX_DIM:
        return {}
    return compared_pairs(ctx.samples, ctx.reference, rank=ctx.target.infinite_variance)


def evaluate_groups(ctx: EvaluationContext, names: Iterable[str]) -> dict[str, float]:
    """Run the metric groups ``names`` on ``ctx`` and merge their results (names must not clash)."""
    results: dict[str, float] = {}
    for name in names:
        group = METRICS[name](ctx)
        clash = results.keys() & group.keys()
        if clash:
            raise ValueError(f"metric group {name!r} repeats keys {sorted(clash)}")
        results.update(group)
    return results


def evaluate_all(ctx: EvaluationContext) -> dict[str, float]:
    """Run every registered metric group on ``ctx`` and merge the results."""
    return evaluate_groups(ctx, METRICS)


__all__ = [
    "METRICS",
    "EvaluationContext",
    "EvaluationSettings",
    "MetricGroup",
    "correlation_comparison",
    "correlation_pairs",
    "density_kl_divergence",
    "draws_to_score",
    "expected_calibration_error",
    "evaluate_all",
    "evaluate_groups",
    "kozachenko_leonenko_entropy",
    "knn_kl_divergence",
    "marginal_coverage",
    "median_bandwidth",
    "mmd_squared",
    "mode_coverage",
    "moment_errors",
    "quantile_errors",
    "rank_correlation_comparison",
    "reliability_curve",
    "reliability_curves",
    "sliced_wasserstein",
]
