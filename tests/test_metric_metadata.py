"""Metric metadata declared where each metric is computed: catalogues merge only where a shared
name means the same, numbered families resolve, and a MetricSet refuses a name no producer
declares."""

from __future__ import annotations

import json

import pytest
from metric_fixtures import DESCRIBE, metric_set

from sivi_engine import metric_catalogue
from sivi_engine.families.semi_implicit import SANDWICH_DIAGNOSTICS
from sivi_engine.metric_metadata import (
    Catalogue,
    MetricInfo,
    UndeclaredMetricError,
    entries_from_json,
    entries_to_json,
    higher,
    lower,
    union,
)
from sivi_engine.steps.evaluate import STATUS


def test_a_name_declared_twice_must_mean_the_same() -> None:
    shared = lower("a discrepancy")
    merged = Catalogue(always={"d": shared}) | Catalogue(sometimes={"d": shared, "e": shared})
    assert merged.info("d") is shared and merged.info("e") is shared
    with pytest.raises(ValueError, match="'d' is declared twice"):
        union([Catalogue(always={"d": shared}), Catalogue(always={"d": higher("other")})])


def test_numbered_families_resolve_and_rank_after_the_named_entries() -> None:
    family = Catalogue(
        sometimes={"x": lower("x")},
        numbered={r"x_(\d+)": lambda k: MetricInfo(f"x number {k}", "—", "")},
    )
    assert family.info("x_12").description == "x number 12"
    assert family.info("y") is None and family.info("x_") is None
    assert family.rank("x") == (0, 0) and family.rank("x_12") == (1, 12)


def test_entries_name_a_known_kind_and_role() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        MetricInfo("d", "lower", "↓", kind="other")
    with pytest.raises(ValueError, match="roles must be among"):
        lower("d").shown(("front_page", 0))


def test_every_producer_is_gathered_with_its_own_metadata() -> None:
    """The metrics package (a numbered coverage level), the evaluation's status, a target's
    held-out score and the reference's copy of it, a method's diagnostic family."""
    info = DESCRIBE.info
    assert info("coverage_95").better == "closest to 0.95"
    assert info("suspect").kind == "status" and info("wall_seconds").unit == "s"
    assert dict(info("rmse").roles) == {"predictive": 2, "split": 0}
    assert info("reference_rmse").kind == "status" and not info("reference_rmse").roles
    assert info("kl_upper_stage4").description.startswith("DSIVI's sequential approximation")
    assert info("hmc_step_size").kind == "diagnostic"
    # legend order: a metric group's before the evaluation's status before a method's
    rank = DESCRIBE.legend_rank
    assert rank("mmd2") < rank("coverage_95") < rank("suspect") < rank("elbo_lower_k10")


def test_a_metric_set_refuses_an_undeclared_name() -> None:
    with pytest.raises(UndeclaredMetricError, match="'my_score'"):
        metric_set({"my_score": 1.0}, "banana", "ksivi", 0)
    attrs = metric_set({"mmd2": 1.0}, "banana", "ksivi", 0)["mmd2"].attrs
    assert attrs["better"] == "lower" and attrs["roles"] == '{"headline": 0, "curve": 0}'


def test_entries_survive_the_json_a_sample_set_carries_them_in() -> None:
    entries = {
        "elbo_lower_k10": SANDWICH_DIAGNOSTICS.info("elbo_lower_k10"),
        "mmd2": DESCRIBE.info("mmd2"),  # with roles
    }
    assert entries_from_json(json.loads(json.dumps(entries_to_json(entries)))) == entries


def test_a_producer_reporting_an_undeclared_name_is_named() -> None:
    declared = Catalogue(always={"x": lower("x")})
    assert set(declared.resolve(["x"], "method 'm'")) == {"x"}
    with pytest.raises(UndeclaredMetricError, match=r"method 'm' reports undeclared .*\['y'\]"):
        declared.resolve(["x", "y"], "method 'm'")


def test_method_diagnostics_rank_alike_in_every_run() -> None:
    """A run's diagnostics rank by name, not by the run's own catalogue: two methods' runs put
    a shared name at the same place, and bounds interleave by their number."""
    toy = Catalogue(always={"toy_elbo": higher("toy")})
    ksivi = Catalogue(always={f"elbo_lower_k{k}": higher(f"k {k}") for k in (10, 100)})
    one, other = (metric_catalogue.describer(STATUS, c) for c in (toy, toy | ksivi))
    assert one.legend_rank("toy_elbo") == other.legend_rank("toy_elbo")
    assert other.legend_rank("toy_elbo") < other.legend_rank("elbo_lower_k10")
    assert other.legend_rank("elbo_lower_k10") < other.legend_rank("elbo_lower_k100")
