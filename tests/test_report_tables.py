"""Table cells: number formatting, the mean ± sd cell over seeds, and the run condition
(ok, suspect, diverged, absent) it reads."""

from __future__ import annotations

import numpy as np
import pytest
from metric_fixtures import metric_set

from sivi_engine import artifacts
from sivi_engine.report import tables
from sivi_engine.report.tables import format_number, seed_cell


def test_format_number() -> None:
    assert format_number(0.123456) == "0.123"
    assert format_number(12345.6) == "12300"
    assert format_number(1.5e-5) == "1.50e-05"
    assert format_number(9.9999) == "10.0"
    assert format_number(float("nan")) == "—"


@pytest.mark.parametrize(
    ("values", "condition", "cell"),
    [
        ([0.010, 0.012, 0.014], ["ok"] * 3, "0.0120 ± 0.00200 (n=3)"),
        ([1.0, 2.0, np.nan], ["ok"] * 3, "1.50 ± 0.707 (n=2)"),  # a missing value is not counted
        ([1.0, 2.0, 100.0], ["ok", "ok", "suspect"], "1.50 ± 0.707 (n=2; 1 suspect)"),
        ([1.0, 7.0, 2.0], ["ok", "diverged", "ok"], "1.50 ± 0.707 (n=2; 1 diverged)"),
        (
            [1.0, np.nan, 5.0, 7.0],
            ["ok", "ok", "diverged", "suspect"],
            "1.00 (n=1; 1 diverged; 1 suspect)",
        ),
        ([np.nan] * 3, ["diverged"] * 3, "— (n=0; 3 diverged)"),
        ([np.nan] * 2, ["absent"] * 2, "—"),
    ],
)
def test_seed_cell_counts_and_excludes(values, condition, cell) -> None:
    assert seed_cell(np.array(values), np.array(condition)) == cell


def test_run_condition_diverged_before_suspect_and_missing_flags_read_as_zero() -> None:
    runs = [
        ({"mmd2": 1.0, "diverged": 1.0, "suspect": 1.0}, 0),
        ({"mmd2": 2.0, "suspect": 1.0}, 1),
        ({"mmd2": 3.0, "diverged": 0.0, "suspect": 0.0}, 2),
        ({"mmd2": 4.0}, 3),
    ]
    combined = artifacts.combine_metric_sets([metric_set(m, "t", "a", s) for m, s in runs])
    combined = combined.reindex(seed=[0, 1, 2, 3, 4])  # seed 4: no run
    run = {"target": "t", "method": "a"}  # a dict: ``sel`` reserves the keyword ``method``
    condition = tables.run_condition(combined.sel(run))
    assert list(condition.values) == ["diverged", "suspect", "ok", "ok", "absent"]
    older = combined.drop_vars(["diverged", "suspect"])  # MetricSets from before the gate
    assert list(tables.run_condition(older.sel(run)).values) == ["ok"] * 4 + ["absent"]
