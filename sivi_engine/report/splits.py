"""Scores over the random splits of a data set: the BNN papers' tables.

The UCI protocol repeats a fit on random train/test splits and reports each held-out score as
mean ± standard error over splits (Hernández-Lobato & Adams 2015, and the SVGD, SIVI-SM and
KSIVI tables). In the workflow a split is a target setting (``split``), and a config ``sweep``
gives one target label per split; here the labels of one data set are grouped back together:
per split the mean over seeds, then over the S splits

    mean = (1/S) Σ_s m_s,     standard error = sd(m_1..m_S) / √S   (sd with ddof = 1).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from sivi_engine.report import legend
from sivi_engine.report.runs import Run
from sivi_engine.report.tables import MISSING, Table, format_number, mean_sd

#: The target setting that names a split.
SPLIT_SETTING = "split"
#: The row of the reference draws' own scores (``reference_<metric>`` in every MetricSet).
REFERENCE_ROW = "reference draws"


@dataclasses.dataclass(frozen=True)
class SplitGroup:
    """The target labels (by split) of one registered target with otherwise equal settings."""

    target_name: str
    labels: dict[int, str]

    @property
    def title(self) -> str:
        return f"{self.target_name} ({len(self.labels)} splits)"


def _other_settings(run: Run) -> str:
    settings = {k: v for k, v in run.target_settings.items() if k != SPLIT_SETTING}
    return json.dumps(settings, sort_keys=True)


def split_groups(runs: Sequence[Run]) -> list[SplitGroup]:
    """Groups of two or more target labels that run one registered target on different
    ``split`` settings and agree on every other setting, in order of first appearance."""
    found: dict[tuple[str, str], dict[int, str]] = {}
    for run in runs:
        if SPLIT_SETTING not in run.target_settings:
            continue
        labels = found.setdefault((run.target_name, _other_settings(run)), {})
        labels[int(run.target_settings[SPLIT_SETTING])] = run.target
    return [
        SplitGroup(name, dict(sorted(labels.items())))
        for (name, _), labels in found.items()
        if len(labels) > 1
    ]


def per_split(combined: xr.Dataset, group: SplitGroup, variable: str, label: str) -> np.ndarray:
    """One value per split: ``variable`` of method ``label`` averaged over its finite seeds
    (NaN for a split without one); diverged runs are left out."""
    if variable not in combined.data_vars or label not in combined["method"].values:
        return np.full(len(group.labels), math.nan)
    values = []
    for target in group.labels.values():
        where = {"target": target, "method": label}
        run = combined[variable].sel(where).values.astype(np.float64)
        if "diverged" in combined.data_vars:
            run = np.where(combined["diverged"].sel(where).values == 1.0, math.nan, run)
        finite = run[np.isfinite(run)]
        values.append(float(finite.mean()) if finite.size else math.nan)
    return np.asarray(values)


def reference_per_split(
    combined: xr.Dataset, group: SplitGroup, variable: str, labels: Sequence[str]
) -> np.ndarray:
    """The reference draws' ``variable`` per split: every run of a split scores the same
    fixed-seed subsample of its reference, so the first label with a finite value gives it."""
    rows = np.stack([per_split(combined, group, variable, label) for label in labels])
    return rows[np.argmax(np.isfinite(rows), axis=0), np.arange(rows.shape[1])]


def cell(values: np.ndarray) -> str:
    """Mean ± standard error sd/√S over the splits with a value (the mean alone for one)."""
    mean, sd, n = mean_sd(values)
    if n == 0:
        return MISSING
    return (
        f"{format_number(mean)} ± {format_number(sd / math.sqrt(n))}"
        if n > 1
        else format_number(mean)
    )


def splits_counted(columns: Sequence[np.ndarray]) -> int:
    """The splits with a value, in the column that has most."""
    return max((int(np.isfinite(values).sum()) for values in columns), default=0)


def split_table(combined: xr.Dataset, group: SplitGroup, labels: Sequence[str]) -> Table:
    """Methods as rows; per score, mean ± standard error over splits, and the splits counted
    (a run left out — diverged, or not run — lowers the count). A last row gives the reference
    draws' own scores where the runs were scored against reference draws."""
    metrics = legend.with_role(combined, "split")
    rows = []
    for label in labels:
        columns = [per_split(combined, group, metric, label) for metric in metrics]
        if splits_counted(columns):
            rows.append((label, *map(cell, columns), str(splits_counted(columns))))
    reference = [f"reference_{m}" for m in metrics]
    if metrics and all(name in combined.data_vars for name in reference):
        columns = [reference_per_split(combined, group, name, labels) for name in reference]
        if splits_counted(columns):
            rows.append((REFERENCE_ROW, *map(cell, columns), str(splits_counted(columns))))
    header = ("method", *(legend.entry(combined, m).title for m in metrics), "splits")
    return Table(header, tuple(rows))
