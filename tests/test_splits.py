"""The report's table over random splits: grouping target labels by split, and mean ± standard
error over splits of the per-split mean over seeds."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from metric_fixtures import DESCRIBE
from report_fixtures import bare_run

from sivi_engine.report.runs import Run
from sivi_engine.report.splits import REFERENCE_ROW, split_groups, split_table
from sivi_engine.report.tables import format_number


def run(target: str, target_name: str, settings: dict, label: str = "k", seed: int = 0) -> Run:
    return bare_run(target, label, seed, target_settings=settings, target_name=target_name)


def test_labels_group_by_target_and_every_setting_but_the_split() -> None:
    runs = [
        run("y1", "bnn_yacht", {"split": 1, "data_dir": "d"}),
        run("y0", "bnn_yacht", {"split": 0, "data_dir": "d"}),
        run("y0", "bnn_yacht", {"split": 0, "data_dir": "d"}, label="g"),
        run("y0b", "bnn_yacht", {"split": 0, "data_dir": "d", "data_batch_size": 50}),
        run("b0", "bnn_boston", {"split": 0, "data_dir": "d"}),
        run("banana", "banana", {}),
    ]
    groups = split_groups(runs)
    # boston and the other minibatch size have one split each: no table
    assert [(g.target_name, g.labels) for g in groups] == [("bnn_yacht", {0: "y0", 1: "y1"})]
    assert groups[0].title == "bnn_yacht (2 splits)"


def combined(values: dict[str, np.ndarray], targets: list[str]) -> xr.Dataset:
    """A combined MetricSet: each variable (target, method, seed) over methods k, g, seeds 0, 1,
    with the metadata every MetricSet variable carries."""
    dims = ("target", "method", "seed")
    coords = {"target": targets, "method": ["k", "g"], "seed": [0, 1]}
    variables = {name: (dims, v, DESCRIBE(name)) for name, v in values.items()}
    return xr.Dataset(variables, coords=coords)


def test_the_table_is_mean_and_standard_error_over_splits_of_the_seed_means() -> None:
    targets = ["y0", "y1", "y2"]
    rmse = np.array(
        [[[1.0, 3.0], [5.0, 5.0]], [[4.0, np.nan], [6.0, 6.0]], [[7.0, 7.0], [7.0, 7.0]]]
    )
    diverged = np.zeros_like(rmse)
    diverged[2, 1, 0] = 1.0  # g's split-2 seed 0: left out
    rmse[2, 1, 0] = 1e6
    ds = combined(
        {
            "rmse": rmse,
            "diverged": diverged,
            "reference_rmse": np.broadcast_to(np.array([0.5, 1.0, 1.5])[:, None, None], rmse.shape),
        },
        targets,
    )
    group = split_groups([run(t, "bnn_yacht", {"split": i}) for i, t in enumerate(targets)])[0]
    table = split_table(ds, group, ["k", "g"])
    assert table.header == ("method", "test RMSE", "splits")
    # k: seed means 2, 4 (its other seed is NaN) and 7
    k = np.array([2.0, 4.0, 7.0])
    g = np.array([5.0, 6.0, 7.0])  # the diverged seed's 1e6 never enters

    def expected(values: np.ndarray) -> str:
        se = values.std(ddof=1) / math.sqrt(len(values))
        return f"{format_number(values.mean())} ± {format_number(se)}"

    assert table.rows[0] == ("k", expected(k), "3")
    assert table.rows[1] == ("g", expected(g), "3")
    assert table.rows[2] == (REFERENCE_ROW, expected(np.array([0.5, 1.0, 1.5])), "3")


def test_a_method_without_any_score_has_no_row() -> None:
    ds = combined({"rmse": np.full((2, 2, 2), np.nan)}, ["y0", "y1"])
    ds["rmse"].loc[{"method": "k"}] = 1.0
    group = split_groups([run(t, "bnn_yacht", {"split": i}) for i, t in enumerate(["y0", "y1"])])[0]
    table = split_table(ds, group, ["k", "g"])
    assert [row[0] for row in table.rows] == ["k"]
    assert table.rows[0][1] == "1.00 ± 0" and table.rows[0][2] == "2"
