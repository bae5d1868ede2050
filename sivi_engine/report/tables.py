"""Tables of the report: per-target method × metric summaries, the tidy CSV and the legend."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from sivi_engine.artifacts import FLOOR_PREFIX
from sivi_engine.report import legend

MISSING = "—"


#: Dimension of the per-checkpoint curves of a MetricSet (``curve_*`` variables): the tables,
#: the CSV and the run conditions read the final-iteration variables only
#: (:mod:`sivi_engine.report.curves` draws the curves).
CHECKPOINT_DIM = "checkpoint"
#: ``artifacts.FLOOR_PREFIX`` variables (``floor_mmd2``, ...) are the reference's own noise
#: floor, not scores of the run: out of the tables and the legend, kept in the CSV.


#: Run conditions of a (target, method, seed) cell of a combined MetricSet.
OK, ABSENT = "ok", "absent"
#: Conditions whose runs are left out of a mean and counted in the cell instead; a run that
#: carries several flags counts under the first (a diverged run is not also counted suspect).
EXCLUSIONS = ("diverged", "suspect")


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


def is_metric(ds: xr.Dataset, name: str) -> bool:
    """Whether a MetricSet variable scores the run: its metadata's kind is not ``status`` (the
    run's flags, draw counts, the reference's own scores) and it is no reference floor."""
    return not legend.is_status(ds, name) and not name.startswith(FLOOR_PREFIX)


#: Dims of a MetricSet's per-run scalars (the final-iteration metrics and flags).
RUN_DIMS = ("target", "method", "seed")


def final_variables(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its per-run scalars only: the per-checkpoint curves (:data:`CHECKPOINT_DIM`)
    and the per-bin reliability curves are dropped."""
    curves = [name for name, var in ds.data_vars.items() if set(var.dims) - set(RUN_DIMS)]
    return ds.drop_vars(curves).drop_dims([d for d in ds.dims if d not in RUN_DIMS])


def run_condition(ds: xr.Dataset) -> xr.DataArray:
    """Per run of ``ds`` (any of the dims target, method, seed): ``"absent"`` where no
    final-iteration variable has a value (the run is not in the report), else the first of
    :data:`EXCLUSIONS` whose flag is 1, else ``"ok"``."""
    present = final_variables(ds).to_dataarray().notnull().any("variable")
    condition = xr.where(present, OK, ABSENT)
    for name in EXCLUSIONS:
        if name in ds.data_vars:  # older MetricSets lack the flags: they read as 0
            condition = xr.where((condition == OK) & (ds[name] == 1.0), name, condition)
    return condition


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """Mean and sample sd (ddof = 1) over the ``n`` usable runs that have a value, and the runs
    left out, as (condition, count) for each condition of :data:`EXCLUSIONS` that occurs."""

    mean: float
    sd: float
    n: int
    excluded: tuple[tuple[str, int], ...]


def summarise_seeds(values: np.ndarray, condition: np.ndarray) -> SeedSummary:
    """:class:`SeedSummary` of one metric over seeds: only runs whose ``condition`` is ok enter
    the mean; diverged and suspect runs are counted, never averaged."""
    values, condition = np.asarray(values, dtype=np.float64), np.asarray(condition)
    mean, sd, n = mean_sd(values[condition == OK])
    counts = ((name, int(np.sum(condition == name))) for name in EXCLUSIONS)
    return SeedSummary(mean, sd, n, tuple((name, count) for name, count in counts if count))


def format_seed_summary(summary: SeedSummary) -> str:
    """``0.012 ± 0.003 (n=3)``, ``0.41 (n=1; 1 suspect)``, ``— (n=0; 3 diverged)``; a bare dash
    when there is neither a value nor an excluded run."""
    if summary.n == 0 and not summary.excluded:
        return MISSING
    if summary.n == 0:
        value = MISSING
    elif summary.n == 1:
        value = format_number(summary.mean)
    else:
        value = f"{format_number(summary.mean)} ± {format_number(summary.sd)}"
    counts = [f"n={summary.n}", *(f"{count} {name}" for name, count in summary.excluded)]
    return f"{value} ({'; '.join(counts)})"


def seed_cell(values: np.ndarray, condition: np.ndarray) -> str:
    """A table cell: :func:`format_seed_summary` of :func:`summarise_seeds`."""
    return format_seed_summary(summarise_seeds(values, condition))


def reported_metrics(ds: xr.Dataset) -> list[str]:
    """The final-iteration metrics of ``ds`` (not its run-status variables, floors or curves)
    that have a value somewhere, in legend order."""
    ds = final_variables(ds)
    return legend.ordered(
        ds, (name for name in ds.data_vars if is_metric(ds, name) and has_values(ds, name))
    )


def target_table(ds: xr.Dataset) -> Table:
    """Methods × metrics for one target (``ds`` has dims method, seed): each cell the
    :func:`seed_cell` of the label's runs.

    Metrics without any value for this target and methods without any run are left out.
    """
    metrics = reported_metrics(ds)
    condition = run_condition(ds)
    rows = []
    for label in ds["method"].values:
        # a dict, not method=...: ``sel`` reserves the keyword ``method`` for inexact matching
        runs = condition.sel({"method": label}).values
        cells = [seed_cell(ds[m].sel({"method": label}).values, runs) for m in metrics]
        if any(cell != MISSING for cell in cells):
            rows.append((str(label), *cells))
    return Table(("method", *(legend.header_cell(ds, m) for m in metrics)), tuple(rows))


def target_tables(combined: xr.Dataset) -> dict[str, Table]:
    """Target name → its table, for every target of the combined MetricSet."""
    return {str(t): target_table(combined.sel(target=t)) for t in combined["target"].values}


def has_values(ds: xr.Dataset, name: str) -> bool:
    """Some run in ``ds`` has ``name`` (a combined table pads every target with NaN)."""
    return name in ds.data_vars and bool(ds[name].notnull().any())


def predictive_table(
    reference_title: str | None,
    reference: Mapping[str, float],
    ds: xr.Dataset,
    labels: Sequence[str],
) -> Table:
    """Predictive metrics of the reference draws and of each label of one target.

    The first row holds ``reference`` (one value per metric, computed from the reference
    draws; no such row where ``reference_title`` is None: no reference draws); then one row
    per label, the :func:`seed_cell` of its runs in ``ds`` (dims method,
    seed) as in :func:`target_table`. Columns: the predictive metrics with a value in either.
    """

    present = [
        m
        for m in legend.with_role(ds, "predictive")
        if not math.isnan(reference.get(m, math.nan)) or has_values(ds, m)
    ]
    rows = []
    if reference_title is not None:
        rows.append(
            (reference_title, *(format_number(reference.get(m, math.nan)) for m in present))
        )
    condition = run_condition(ds)
    for label in labels:
        runs = condition.sel({"method": label}).values
        cells = [
            seed_cell(ds[m].sel({"method": label}).values, runs) if m in ds.data_vars else MISSING
            for m in present
        ]
        rows.append((str(label), *cells))
    return Table(("method", *(legend.header_cell(ds, m) for m in present)), tuple(rows))


def tidy_frame(combined: xr.Dataset) -> pd.DataFrame:
    """One row per run in the report, every run's raw final-iteration values (suspect and
    diverged runs included): columns target, method, seed, the run-status variables present
    (suspect and diverged first), the metrics in legend order, then the reference floors."""
    combined = final_variables(combined)
    names = [str(name) for name in combined.data_vars if not name.startswith(FLOOR_PREFIX)]
    status = legend.ordered(combined, (n for n in names if legend.is_status(combined, n)))
    metrics = legend.ordered(combined, (n for n in names if is_metric(combined, n)))
    floors = sorted(name for name in combined.data_vars if name.startswith(FLOOR_PREFIX))
    columns = status + metrics + floors
    frame = combined[columns].to_dataframe().reset_index()
    frame = frame.dropna(subset=columns, how="all")
    frame["target"] = frame["target"].astype(str)
    frame["method"] = frame["method"].astype(str)
    return frame[["target", "method", "seed", *columns]].reset_index(drop=True)


def legend_table(ds: xr.Dataset, metrics: Sequence[str]) -> Table:
    """Metric, meaning and which way is better, for ``metrics`` of ``ds`` in legend order, from
    the metadata each variable carries."""
    entries = {m: legend.entry(ds, m) for m in legend.ordered(ds, metrics)}
    rows = tuple((m, e.description, e.better) for m, e in entries.items())
    return Table(("metric", "meaning", "better"), rows)


def key_value_table(header: tuple[str, str], items: Mapping[str, object]) -> Table:
    """A two-column table from a mapping (e.g. package versions)."""
    return Table(header, tuple((str(k), str(v)) for k, v in items.items()))
