"""Tables of the report: per-target method × metric summaries, the tidy CSV and the legend."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from sivi_engine.report import metric_info

MISSING = "—"


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of display strings: one header row and body rows of the same width."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def format_number(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits; plain notation for 1e-3 ≤ |value| < 1e5."""
    if math.isnan(value):
        return MISSING
    if math.isinf(value) or value == 0:
        return f"{value:g}"
    rounded = float(f"{value:.{digits}g}")
    exponent = math.floor(math.log10(abs(rounded)))
    if -3 <= exponent < 5:
        return f"{rounded:.{max(0, digits - 1 - exponent)}f}"
    return f"{rounded:.{digits - 1}e}"


def mean_sd(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, sample sd (ddof = 1; NaN for one value) and count of the non-NaN values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    n = values.size
    mean = float(values.mean()) if n else math.nan
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    return mean, sd, n


def format_mean_sd(values: np.ndarray) -> str:
    """"mean ± sd" over seeds; just the mean for one seed; a dash for none."""
    mean, sd, n = mean_sd(values)
    if n == 0:
        return MISSING
    if n == 1:
        return format_number(mean)
    return f"{format_number(mean)} ± {format_number(sd)}"


def reported_metrics(ds: xr.Dataset) -> list[str]:
    """The metrics of ``ds`` that have a value somewhere, in legend order."""
    return metric_info.ordered(name for name in ds.data_vars if bool(ds[name].notnull().any()))


def header_cell(metric: str) -> str:
    """Metric name followed by its direction hint, e.g. ``kl_qp_knn ↓``."""
    return f"{metric} {metric_info.info(metric).hint}".rstrip()


def target_table(ds: xr.Dataset) -> Table:
    """Methods × metrics for one target (``ds`` has dims method, seed): "mean ± sd" over seeds.

    Metrics without any value for this target and methods without any value are left out.
    """
    metrics = reported_metrics(ds)
    rows = []
    for label in ds["method"].values:
        # a dict, not method=...: ``sel`` reserves the keyword ``method`` for inexact matching
        cells = [format_mean_sd(ds[m].sel({"method": label}).values) for m in metrics]
        if any(cell != MISSING for cell in cells):
            rows.append((str(label), *cells))
    return Table(("method", *(header_cell(m) for m in metrics)), tuple(rows))


def target_tables(combined: xr.Dataset) -> dict[str, Table]:
    """Target name → its table, for every target of the combined MetricSet."""
    return {str(t): target_table(combined.sel(target=t)) for t in combined["target"].values}


#: Held-out predictive metrics (the ``predictive`` metric group), in legend order.
PREDICTIVE_METRICS = ("test_log_likelihood", "accuracy", "rmse", "ece")


def predictive_table(reference_title: str, reference: Mapping[str, float], ds: xr.Dataset,
                     labels: Sequence[str]) -> Table:
    """Predictive metrics of the reference draws and of each label of one target.

    The first row holds ``reference`` (one value per metric, computed from the reference
    draws); then one row per label, "mean ± sd" over seeds of ``ds`` (dims method, seed) as in
    :func:`target_table`. Columns: the predictive metrics with a value in either.
    """
    def has_values(metric: str) -> bool:
        return metric in ds.data_vars and bool(ds[metric].notnull().any())

    present = [m for m in metric_info.ordered(PREDICTIVE_METRICS)
               if not math.isnan(reference.get(m, math.nan)) or has_values(m)]
    rows = [(reference_title, *(format_number(reference.get(m, math.nan)) for m in present))]
    for label in labels:
        cells = [format_mean_sd(ds[m].sel({"method": label}).values) if m in ds.data_vars
                 else MISSING for m in present]
        rows.append((str(label), *cells))
    return Table(("method", *(header_cell(m) for m in present)), tuple(rows))


def tidy_frame(combined: xr.Dataset) -> pd.DataFrame:
    """One row per run that has any metric: columns target, method, seed, then the metrics."""
    metrics = metric_info.ordered(combined.data_vars)
    frame = combined[metrics].to_dataframe().reset_index()
    frame = frame.dropna(subset=metrics, how="all")
    frame["target"] = frame["target"].astype(str)
    frame["method"] = frame["method"].astype(str)
    return frame[["target", "method", "seed", *metrics]].reset_index(drop=True)


def legend_table(metrics: Sequence[str]) -> Table:
    """Metric, meaning and which way is better, for ``metrics`` in legend order."""
    rows = tuple(
        (m, metric_info.info(m).description, metric_info.info(m).better)
        for m in metric_info.ordered(metrics)
    )
    return Table(("metric", "meaning", "better"), rows)


def key_value_table(header: tuple[str, str], items: Mapping[str, object]) -> Table:
    """A two-column table from a mapping (e.g. package versions)."""
    return Table(header, tuple((str(k), str(v)) for k, v in items.items()))
