"""The report's views of the seed papers' own experiments, from stored variables only: DSIVI's
bounds per stage, KL along training against the family's optimum, and the ELBO table whose
columns come from the metrics' roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from metric_fixtures import metric_set
from report_fixtures import bare_run

from sivi_engine import artifacts
from sivi_engine.report import figures as fig
from sivi_engine.report import seed_experiments, views
from sivi_engine.report.render import Image, Paragraph, TableBlock
from sivi_engine.report.tables import format_number

LABELS, SEEDS = ("dsivi_k10", "joint"), (0, 1)


def run_metrics(label: str, seed: int) -> dict[str, float]:
    """Known values: stage bounds and the exact KL for the DSIVI label, the ELBO terms for
    both, joint VI's own bound for the joint label, the held-out accuracy for both."""
    shift = 0.01 * seed
    metrics = {"suspect": 0.0, "diverged": 0.0, "accuracy": 0.9 + shift}
    metrics |= {"elbo": -3.0 - seed, "elbo_kl_term": 1.0 + shift}
    if label == "dsivi_k10":
        for stage in (1, 2):
            metrics[f"kl_lower_stage{stage}"] = 0.1 * stage + shift
            metrics[f"kl_upper_stage{stage}"] = 0.2 * stage + shift
        metrics |= {"kl_qp_quadrature": 0.09 + shift, "kl_qp_family_optimum": 0.0856}
        metrics["kl_qp_exact"] = 0.1 + shift
    else:
        metrics["joint_elbo"] = -5.0 - seed
    return metrics


@pytest.fixture(scope="module")
def data() -> views.TargetData:
    sets = []
    for label in LABELS:
        for seed in SEEDS:
            curves = {"iteration": np.array([10.0, 100.0]), "seconds": np.array([0.1, 1.0])}
            if label == "dsivi_k10":
                curves["kl_qp_exact"] = np.array([0.5, 0.1 + 0.01 * seed])
            sets.append(metric_set(run_metrics(label, seed), "t", label, seed, curves=curves))
    combined = artifacts.combine_metric_sets(sets).sel(target="t")
    runs = tuple(bare_run("t", label, seed) for label in LABELS for seed in SEEDS)
    return views.TargetData("t", runs, combined, fig.colours(LABELS), Path("unused"))


def test_stage_bounds_table_holds_the_mean_bounds_per_stage(data) -> None:
    assert seed_experiments.has_stage_bounds(data)
    paragraph, table, image = seed_experiments.stage_bound_blocks(data)
    assert isinstance(paragraph, Paragraph) and isinstance(image, Image)
    assert isinstance(table, TableBlock) and table.table.header == ("method", "stage 1", "stage 2")
    # means over seeds 0 and 1: 0.1 + 0.005 – 0.2 + 0.005 at stage 1, doubled-ish at stage 2
    expected = tuple(
        f"{format_number(0.1 * s + 0.005)} – {format_number(0.2 * s + 0.005)}" for s in (1, 2)
    )
    assert table.table.rows == (("dsivi_k10", *expected),)


def test_exact_kl_view_draws_the_curve_and_states_the_optimum(data) -> None:
    assert seed_experiments.has_exact_kl(data)
    image, note, table = seed_experiments.exact_kl_blocks(data)
    assert isinstance(image, Image) and image.path == "figures/t_exact_kl.png"
    assert format_number(0.0856, 4) in note.text
    assert table.table.header == ("method", "kl_qp_quadrature ↓", "kl_qp_exact ↓")
    assert table.table.rows[0][0] == "dsivi_k10"
    assert (
        table.table.rows[0][1]
        == f"{format_number(0.095)} ± {format_number(np.std([0.09, 0.1], ddof=1))}"
    )


def test_elbo_table_columns_come_from_the_metrics_roles(data) -> None:
    """The ``elbo`` role's metrics in their rank, then the held-out ones that have values
    (accuracy; no rmse, no ece here); a label without joint VI's bound shows it missing."""
    assert seed_experiments.has_elbo(data)
    paragraph, table = seed_experiments.elbo_blocks(data)
    assert table.table.header == (
        "method",
        "elbo ↑",
        "elbo_kl_term ↓",
        "joint_elbo ↑",
        "accuracy ↑",
    )
    rows = {row[0]: row[1:] for row in table.table.rows}
    assert rows["joint"][2] == f"{format_number(-5.5)} ± {format_number(np.std([-5, -6], ddof=1))}"
    assert rows["dsivi_k10"][2] == "—"
