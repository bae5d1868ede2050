"""Quality along training (issue 10): every checkpoint of a run scored on the curve metrics,
and the reference's own noise floor at the checkpoints' sample size.

A checkpoint's draws are scored by the metric groups :data:`CURVE_GROUPS`: the discrepancies
that are consistent in any dimension (MMD², sliced Wasserstein), the moments, the density KL
where the target allows it and the held-out predictive scores. The kNN KL, the correlations and
the coverage are scored on the final draws only: the kNN KL costs most of a 22-D evaluation and
its bias at d ≫ 2 swamps the differences it should show. The noise floor
answers "how good can n draws look?": n reference draws scored against the other reference
draws give the values that an exact sampler's n draws reach, finite-sample bias and noise of
the estimators (kNN KL, unbiased MMD² scattered around 0) included. The estimators' bias
depends on both sample sizes (on blr_waveform, 22-D, 2000 Laplace draws score kNN KL(q‖p)
−0.49 against 10 000 others and −0.42 against 8000), so :func:`checkpoint_scores` scores the
checkpoints against the same reference draws as the floor: a curve and its floor differ only
in whose n draws are scored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sivi_engine.artifacts import FLOOR_PREFIX
from sivi_engine.metrics import EvaluationContext, EvaluationSettings, evaluate_groups

if TYPE_CHECKING:  # annotation only: importing targets at runtime loads every target module
    from sivi_engine.targets.base import Target

#: Metric groups scored at every checkpoint.
CURVE_GROUPS = ("mmd", "sliced_wasserstein", "moments", "density_kl", "predictive")
#: Metric groups scored for the noise floor: the sample-based discrepancies and the moments.
FLOOR_GROUPS = ("knn_kl", "mmd", "sliced_wasserstein", "density_kl", "moments")

#: Second entropy word of the floor split's seed, so that the split is independent of the
#: fixed-seed subsamples the metric groups draw from ``settings.seed`` alone.
_FLOOR_STREAM = 1


def score_checkpoints(
    draws: np.ndarray,
    reference: np.ndarray,
    target: Target,
    settings: EvaluationSettings,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """:data:`CURVE_GROUPS` on each checkpoint's draws ``draws`` (K, m, d) against
    ``reference`` (M, d): metric name → its K values. A checkpoint whose draws are not all
    finite is not scored (NaN throughout), and a metric missing at a checkpoint is NaN there.
    What depends on the reference alone (the MMD reference kernel, the predictive scores of m
    reference draws) is computed once for all checkpoints."""
    shared: dict = {}
    contexts = [
        EvaluationContext(points, reference, target, settings, device, shared) for points in draws
    ]
    rows = [
        evaluate_groups(context, CURVE_GROUPS) if np.isfinite(context.samples).all() else {}
        for context in contexts
    ]
    names = dict.fromkeys(name for row in rows for name in row)
    return {name: np.array([row.get(name, np.nan) for row in rows]) for name in names}


def hold_out_floor_draws(
    reference: np.ndarray, n: int, settings: EvaluationSettings
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of the M reference draws, chosen with ``settings.seed``, and the other M − n.

    Requires M ≥ 2n, so that the draws left hold at least as many as the floor's; with fewer
    reference draws none are held out: (an empty (0, d) array, ``reference``).
    """
    if reference.shape[0] < 2 * n:
        return reference[:0], reference
    order = np.random.default_rng([settings.seed, _FLOOR_STREAM]).permutation(reference.shape[0])
    return reference[order[:n]], reference[order[n:]]


def noise_floor(
    floor_draws: np.ndarray,
    against: np.ndarray,
    target: Target,
    settings: EvaluationSettings,
    device: str = "cpu",
) -> dict[str, float]:
    """:data:`FLOOR_GROUPS` on reference draws ``floor_draws`` against disjoint ones
    ``against`` (so that no draw is its own nearest neighbour), each name prefixed
    ``floor_``; {} when no draws are held out."""
    if floor_draws.shape[0] == 0:
        return {}
    scores = evaluate_groups(
        EvaluationContext(floor_draws, against, target, settings, device), FLOOR_GROUPS
    )
    return {f"{FLOOR_PREFIX}{name}": value for name, value in scores.items()}


def checkpoint_scores(
    draws: np.ndarray,
    reference: np.ndarray,
    target: Target,
    settings: EvaluationSettings,
    device: str = "cpu",
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The curves (:func:`score_checkpoints`) of checkpoint draws (K, m, d) and the noise
    floor at m draws (:func:`noise_floor`), both scored against the reference draws left by
    :func:`hold_out_floor_draws` (all of them when the floor is skipped)."""
    floor_draws, against = hold_out_floor_draws(reference, draws.shape[1], settings)
    return (
        score_checkpoints(draws, against, target, settings, device),
        noise_floor(floor_draws, against, target, settings, device),
    )
