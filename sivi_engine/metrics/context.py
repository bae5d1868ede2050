"""What a metric group sees: q's samples, the reference draws, the target and the settings."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sivi_engine.metrics.arrays import subsample
from sivi_engine.metrics.predictive import CALIBRATION_BINS
from sivi_engine.settings import SettingsError

if TYPE_CHECKING:  # annotation only: importing targets at runtime loads every target module
    from sivi_engine.targets.base import Target


#: Upper bounds of the evaluation's size settings: an MMD² holds max_points_mmd² float64 kernel
#: entries per matrix (20 000: 3.2 GB), the kNN search and the sliced distance scale with theirs.
LIMITS = {"max_points_mmd": 20_000, "max_points_knn": 1_000_000, "sliced_projections": 10_000}
LIMIT_REASON = "the evaluation holds arrays of this size in memory"


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """Constants of the evaluation (sample caps bound the quadratic / tree-query costs).

    ``num_draws``: every run is scored on this many of q's draws (a fixed-seed subsample, see
    :func:`draws_to_score`), since the estimators' bias depends on n; a run that stored fewer
    is scored on all of them (the MetricSet's ``scored_draws`` says how many); None scores all
    draws.
    ``sliced_projections``: random directions of the sliced Wasserstein distance (its
    Monte-Carlo error over directions, measured on a 22-D Gaussian with 1000 draws: 2 % of the
    value for exact draws, 0.7 % for sds 0.7× too small).
    ``calibration_bins``: equal-width bins of the reliability curve and the ECE
    (:mod:`sivi_engine.metrics.predictive`). ``mode_min_share``: a mixture mode k counts as
    covered by q when q's mass in its cell is at least this share of the target weight w_k (see
    :mod:`sivi_engine.metrics.modes`). ``gate_*``: thresholds of the sanity gate
    (:mod:`sivi_engine.metrics.gate`, where their values are justified).
    """

    knn_k: int = 1
    max_points_knn: int = 10000
    max_points_mmd: int = 2000
    sliced_projections: int = 200
    num_draws: int | None = None
    seed: int = 0
    mode_min_share: float = 0.25
    calibration_bins: int = CALIBRATION_BINS
    gate_mean_error_sd: float = 3.0
    gate_median_error_iqr: float = 2.0
    gate_log_scale_ratio: float = math.log(10.0)
    gate_lpd_drop: float = 0.5

    def validate(self) -> None:
        for name in (
            "knn_k",
            "max_points_knn",
            "max_points_mmd",
            "sliced_projections",
            "calibration_bins",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"setting {name!r} must be >= 1, got {getattr(self, name)!r}")
        for name, most in LIMITS.items():
            if getattr(self, name) > most:
                value = getattr(self, name)
                raise SettingsError(
                    f"setting {name!r}: at most {most} ({LIMIT_REASON}), got {value!r}"
                )
        if self.num_draws is not None and self.num_draws < 2:
            raise SettingsError(f"setting 'num_draws' must be >= 2 or null, got {self.num_draws!r}")
        for name in (
            "gate_mean_error_sd",
            "gate_median_error_iqr",
            "gate_log_scale_ratio",
            "gate_lpd_drop",
        ):
            if not getattr(self, name) > 0:
                raise SettingsError(f"setting {name!r} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.mode_min_share <= 1:
            raise SettingsError(
                f"setting 'mode_min_share' must be in (0, 1], got {self.mode_min_share!r}"
            )


@dataclasses.dataclass(frozen=True)
class EvaluationContext:
    """Inputs of one evaluation: ``samples`` from q (n, d), ``reference`` draws from p (m, d);
    ``device`` (``cpu`` or ``cuda``) is where the quadratic-cost metrics (kNN, MMD) run;
    ``shared``: what the metric groups compute from the reference side alone (the MMD
    reference kernel, the reference's predictive scores), kept for every context that is handed
    the same dict: contexts sharing it must have the same reference, settings and device, and
    as many draws (the checkpoints of one run)."""

    samples: np.ndarray
    reference: np.ndarray
    target: Target
    settings: EvaluationSettings = dataclasses.field(default_factory=EvaluationSettings)
    device: str = "cpu"
    shared: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("samples", "reference"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != self.target.dim:
                raise ValueError(
                    f"{name} must have shape (n, {self.target.dim}) for this target, "
                    f"got {arr.shape}"
                )
            object.__setattr__(self, name, arr)

    def reference_side(self, name: str, compute: Callable[[], Any]) -> Any:
        """``shared[name]``, computed by ``compute()`` on first use."""
        if name not in self.shared:
            self.shared[name] = compute()
        return self.shared[name]

    @property
    def reference_predictive(self) -> dict[str, Any] | None:
        """``target.predictive`` of a fixed-seed subsample of the reference draws, as many as
        q's (an S-draw predictive mean is biased by O(1/S), so both get the same S); None for a
        target without held-out data. Kept in :attr:`shared`."""
        from sivi_engine.targets.capabilities import HeldOutData

        if not isinstance(self.target, HeldOutData):
            return None

        def compute() -> dict[str, Any]:
            rng = np.random.default_rng(self.settings.seed)
            return self.target.predictive(subsample(self.reference, self.samples.shape[0], rng))

        return self.reference_side("reference_predictive", compute)

    @functools.cached_property
    def predictive(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``target.predictive`` of q's draws and :attr:`reference_predictive`; None for a
        target without held-out data. Computed once for the metrics and the reliability
        curves."""
        if self.reference_predictive is None:
            return None
        return self.target.predictive(self.samples), self.reference_predictive


def draws_to_score(samples: np.ndarray, settings: EvaluationSettings) -> np.ndarray:
    """The ``settings.num_draws`` rows of ``samples`` that are scored: a subsample without
    replacement drawn with ``settings.seed`` (all rows when num_draws is None or at least the
    rows there are)."""
    if settings.num_draws is None or samples.shape[0] <= settings.num_draws:
        return samples
    return subsample(samples, settings.num_draws, np.random.default_rng(settings.seed))
