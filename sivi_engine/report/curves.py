"""Quality along training: the per-checkpoint curves of a MetricSet summarised over seeds, and
the time each method takes to come within reach of the reference's own noise floor.

The evaluation scores every checkpoint a run stored: ``curve_<metric>``, ``curve_iteration`` and
``curve_seconds`` (training-loop seconds) on dims (target, method, seed, checkpoint), NaN past a
run's last checkpoint; and it scores a second, disjoint set of reference draws, as many as a
checkpoint holds, against the reference: ``floor_<metric>`` on (target, method, seed), what an
exact q would get at that sample size. The report reads both and recomputes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from sivi_engine.artifacts import CURVE_PREFIX, FLOOR_PREFIX
from sivi_engine.report import legend
from sivi_engine.report.tables import (
    ABSENT,
    EXCLUSIONS,
    MISSING,
    OK,
    Table,
    format_number,
    run_condition,
    seed_cell,
)

#: The clocks of a checkpoint: the iteration and the training loop's seconds there.
ITERATION, SECONDS = f"{CURVE_PREFIX}iteration", f"{CURVE_PREFIX}seconds"

#: Time to quality: the first checkpoint at which
#: MMD² ≤ τ = QUALITY_FACTOR · max(|floor|, MMD2_RESOLUTION).
QUALITY_METRIC = "mmd2"
QUALITY_FACTOR = 2.0
#: Below this |floor| the threshold does not shrink: the unbiased MMD² of two samples of the
#: same law scatters around 0 (measured sd 1.5e-4 on banana, 3.2e-4 on gmm1d, 2 000 draws
#: against 2 000 reference draws), so a floor that lands nearer 0 than this is luck, not a scale.
MMD2_RESOLUTION = 1e-4
QUALITY_RULE = (
    "time to quality: per seed, the training-loop seconds of the first checkpoint at which "
    f"mmd2 ≤ τ = {QUALITY_FACTOR:g}·max(|floor_mmd2|, {MMD2_RESOLUTION:g}), floor_mmd2 being the "
    "run's MMD² of a second, disjoint set of reference draws (as many as a checkpoint's) against "
    f"the reference; a floor nearer 0 than {MMD2_RESOLUTION:g} is sampling luck (an unbiased MMD² "
    "between two samples of one law scatters by 1.5–3e-4 at 2 000 draws). Then the median over "
    "seeds: a seed that never gets there counts as infinitely late, “not reached” when half the "
    "seeds or more never do"
)


def curve_name(metric: str) -> str:
    return f"{CURVE_PREFIX}{metric}"


def floor_name(metric: str) -> str:
    return f"{FLOOR_PREFIX}{metric}"


def curve_metrics(ds: xr.Dataset) -> list[str]:
    """The metrics whose metadata gives them the ``curve`` role (in its order; the moment
    error is ``mean_error_std``, or ``median_error_iqr`` on infinite-variance targets) and
    whose curve has a value somewhere in ``ds``."""
    curves = [str(n) for n in ds.data_vars if str(n).startswith(CURVE_PREFIX)]
    return [
        name.removeprefix(CURVE_PREFIX)
        for name in legend.with_role(ds, "curve", curves)
        if bool(np.isfinite(ds[name].values).any())
    ]


@dataclasses.dataclass(frozen=True)
class SeedBand:
    """One label's curve over seeds, per checkpoint k: the position ``x`` (median over seeds of
    the iteration or seconds), the ``mean`` over seeds and the band [``lower``, ``upper``] =
    [min, max] over seeds."""

    x: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def seed_band(x: np.ndarray, y: np.ndarray) -> SeedBand:
    """:class:`SeedBand` of values ``y`` (seed, checkpoint) at positions ``x`` (seed,
    checkpoint), over the seeds where both are finite; checkpoints without any are dropped
    (runs of different lengths are NaN-padded)."""
    x, y = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(y, np.float64))
    valid = np.isfinite(x) & np.isfinite(y)
    keep = valid.any(axis=0)
    if not keep.any():
        empty = np.empty(0)
        return SeedBand(empty, empty, empty, empty)
    x, y = np.where(valid, x, np.nan)[:, keep], np.where(valid, y, np.nan)[:, keep]
    return SeedBand(
        np.nanmedian(x, axis=0), np.nanmean(y, axis=0), np.nanmin(y, axis=0), np.nanmax(y, axis=0)
    )


def ok_seeds(ds: xr.Dataset, label: str) -> np.ndarray:
    """Seeds of ``label`` in ``ds`` (dims method, seed, ...) whose run is ok: the runs the
    tables average (diverged and suspect runs are left out)."""
    condition = run_condition(ds).sel({"method": label})
    return ds["seed"].values[condition.values == OK]


def label_band(ds: xr.Dataset, label: str, metric: str, clock: str) -> SeedBand:
    """``label``'s curve of ``metric`` against ``clock`` (:data:`ITERATION` or :data:`SECONDS`)
    over its ok seeds."""
    runs = ds.sel({"method": label, "seed": ok_seeds(ds, label)})
    return seed_band(
        runs[clock].transpose("seed", ...).values,
        runs[curve_name(metric)].transpose("seed", ...).values,
    )


def floor_value(ds: xr.Dataset, metric: str) -> float:
    """Median over the target's runs of ``floor_<metric>`` (NaN without one)."""
    name = floor_name(metric)
    if name not in ds.data_vars or not np.isfinite(ds[name].values).any():
        return math.nan
    return float(np.nanmedian(ds[name].values))


def quality_threshold(floor: np.ndarray) -> np.ndarray:
    """τ = QUALITY_FACTOR · max(|floor|, MMD2_RESOLUTION) (NaN where the floor is)."""
    floor = np.asarray(floor, np.float64)
    return QUALITY_FACTOR * np.maximum(np.abs(floor), MMD2_RESOLUTION)


def median_threshold(ds: xr.Dataset) -> float:
    """Median over the target's runs of τ (NaN without an MMD² floor)."""
    name = floor_name(QUALITY_METRIC)
    if name not in ds.data_vars or not np.isfinite(ds[name].values).any():
        return math.nan
    return float(np.nanmedian(quality_threshold(ds[name].values)))


def first_reached(values: np.ndarray, clock: np.ndarray, threshold: float) -> float:
    """``clock`` at the first checkpoint with ``values`` ≤ ``threshold``; ∞ if none is."""
    reached = np.flatnonzero(np.asarray(values) <= threshold)
    return float(clock[reached[0]]) if reached.size else math.inf


@dataclasses.dataclass(frozen=True)
class QualityTime:
    """A label's time to quality: medians over its ``n`` ok seeds of the seconds and iterations
    (∞: not reached) and of the threshold τ, how many seeds reached τ, and the runs left out as
    (condition, count)."""

    seconds: float
    iteration: float
    threshold: float
    reached: int
    n: int
    excluded: tuple[tuple[str, int], ...]


def time_to_quality(ds: xr.Dataset, label: str) -> QualityTime:
    """:class:`QualityTime` of ``label`` in one target's MetricSet ``ds`` (:data:`QUALITY_RULE`)."""
    condition = run_condition(ds).sel({"method": label}).values
    runs = ds.sel({"method": label, "seed": ok_seeds(ds, label)})
    values = runs[curve_name(QUALITY_METRIC)].transpose("seed", ...).values
    thresholds = quality_threshold(runs[floor_name(QUALITY_METRIC)].values)
    clocks = {c: runs[c].transpose("seed", ...).values for c in (SECONDS, ITERATION)}
    first = {
        c: np.array([first_reached(v, t, tau) for v, t, tau in zip(values, clock, thresholds)])
        for c, clock in clocks.items()
    }
    counts = ((name, int(np.sum(condition == name))) for name in EXCLUSIONS)
    return QualityTime(
        seconds=_median(first[SECONDS]),
        iteration=_median(first[ITERATION]),
        threshold=_median(thresholds),
        reached=int(np.isfinite(first[SECONDS]).sum()),
        n=len(values),
        excluded=tuple((name, count) for name, count in counts if count),
    )


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _reached_cell(quality: QualityTime) -> str:
    counts = [
        f"{quality.reached} of {quality.n}",
        *(f"{count} {name}" for name, count in quality.excluded),
    ]
    return "; ".join(counts)


def _clock_cell(value: str, quality: QualityTime) -> str:
    if quality.n == 0:
        return MISSING
    return "not reached" if math.isinf(quality.seconds) else value


def has_quality_inputs(ds: xr.Dataset) -> bool:
    """Whether ``ds`` holds what the time-to-quality table needs: MMD² curves, the clocks and
    the MMD² floor."""
    needed = (curve_name(QUALITY_METRIC), floor_name(QUALITY_METRIC), SECONDS, ITERATION)
    return all(name in ds.data_vars for name in needed)


def time_to_quality_table(ds: xr.Dataset, labels: Sequence[str]) -> Table:
    """Per label of one target (``ds``: dims method, seed, checkpoint): median seconds and
    iterations to quality, seeds that reached it (of the ok ones; left-out runs counted) and τ."""
    header = (
        "method",
        f"seconds to {QUALITY_METRIC} ≤ τ (median)",
        "iteration (median)",
        "seeds reached",
        "τ (median)",
    )
    curve = ds[curve_name(QUALITY_METRIC)]
    rows = []
    for label in labels:
        if not np.isfinite(curve.sel({"method": label}).values).any():
            continue  # the label has no curve on this target
        quality = time_to_quality(ds, label)
        rows.append(
            (
                label,
                _clock_cell(f"{format_number(quality.seconds)} s", quality),
                _clock_cell(f"{quality.iteration:g}", quality),
                _reached_cell(quality),
                format_number(quality.threshold),
            )
        )
    return Table(header, tuple(rows))


def headline_table(ds: xr.Dataset, labels: Sequence[str]) -> Table:
    """Per label of one target (``ds``: dims method, seed, checkpoint), the compact headline:
    its final metrics of the ``headline`` role (mean ± sd over ok seeds, left-out runs
    counted), the median seconds to MMD² ≤ τ and the seeds that got there
    (:data:`QUALITY_RULE`). Labels without a run on the target are left out."""
    metrics = [m for m in legend.with_role(ds, "headline") if bool(ds[m].notnull().any())]
    timed = has_quality_inputs(ds)
    header = (
        "method",
        *(legend.header_cell(ds, m) for m in metrics),
        *((f"seconds to {QUALITY_METRIC} ≤ τ (median)", "seeds reached") if timed else ()),
    )
    condition = run_condition(ds)
    rows = []
    for label in labels:
        runs = condition.sel({"method": label}).values
        if not (runs != ABSENT).any():
            continue
        cells = [seed_cell(ds[m].sel({"method": label}).values, runs) for m in metrics]
        if timed:
            quality = time_to_quality(ds, label)
            seconds = _clock_cell(f"{format_number(quality.seconds)} s", quality)
            cells += [seconds, _reached_cell(quality)]
        rows.append((label, *cells))
    return Table(header, tuple(rows))
