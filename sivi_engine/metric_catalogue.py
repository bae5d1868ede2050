"""Every MetricSet variable's metadata, gathered from where each is computed
(:mod:`sivi_engine.metric_metadata`): the metrics package's groups, each registered target's
held-out scores (and the reference's, ``reference_<score>``), and what the evaluation adds for
a run, its own status and the method's diagnostics as the run's SampleSet carries them (so the
evaluation never imports a method). A :class:`Describer` gives the attributes every MetricSet
variable carries (:func:`sivi_engine.artifacts.metric_set`); the report reads those attributes
only."""

from __future__ import annotations

import dataclasses
import functools
import json
import re

from sivi_engine.artifacts import CURVE_PREFIX, FLOOR_PREFIX, PAIR_PREFIX, RELIABILITY_PREFIX
from sivi_engine.metric_metadata import (
    Catalogue,
    MetricInfo,
    UndeclaredMetricError,
    neutral,
    union,
)

#: The clocks of the curves (``curve_iteration``, ``curve_seconds``).
CLOCKS = {
    "iteration": neutral("training iteration of each checkpoint"),
    "seconds": neutral("training-loop seconds at each checkpoint", unit="s"),
}
#: The legend rank of the variables that are not metrics (clocks, per-bin and per-pair series).
LAST_RANK = 10**9


def reference_scores(scores: Catalogue) -> Catalogue:
    """``reference_<name>`` of each held-out score: the score of the reference draws."""
    return Catalogue(
        sometimes={
            f"reference_{name}": neutral(f"{name} of the reference draws (as many as q's)")
            for name in scores.named
        }
    )


@functools.cache
def evaluation_producers() -> tuple[tuple[Catalogue, ...], Catalogue]:
    """The metric groups' catalogues in registration order, and the held-out scores: the
    targets' with the ECE."""
    from sivi_engine.metrics import METRICS
    from sivi_engine.targets import TARGETS
    from sivi_engine.targets.capabilities import HeldOutData

    groups = [group.declared for group in METRICS.registered()]
    held_out = union(
        TARGETS[name].predictive_metrics
        for name in TARGETS
        if issubclass(TARGETS[name], HeldOutData)
    )
    return tuple(groups), held_out | METRICS["predictive"].declared


@dataclasses.dataclass(frozen=True)
class Describer:
    """The metadata of MetricSet variables from ``catalogues`` (in legend order; a name two of
    them declare must mean the same); calling it gives a variable's attributes.

    The catalogue at index ``ranked_by_name`` (a run's method diagnostics, which differ from
    run to run) ranks its names by their trailing number alone, so that every run gives a name
    the same rank and the legend's tie-break by name orders them (``toy_elbo``, then
    ``elbo_lower_k10``, ``elbo_upper_k10``, ``elbo_lower_k100``, …)."""

    catalogues: tuple[Catalogue, ...]
    ranked_by_name: int | None = None

    @functools.cached_property
    def merged(self) -> Catalogue:
        return union(self.catalogues)

    def info(self, name: str) -> MetricInfo:
        """The declared entry of metric ``name``."""
        entry = self.merged.info(name)
        if entry is None:
            raise UndeclaredMetricError(
                f"metric {name!r} is declared by no producer: a method declares its diagnostics "
                "in its `diagnostics` catalogue, a target its held-out scores in "
                "`predictive_metrics`, a metric group at its registration "
                "(sivi_engine.metric_metadata)"
            )
        return entry

    def legend_rank(self, name: str) -> int:
        """Position in the legend: by catalogue, then the catalogue's own order (named entries,
        then numbered families by number)."""
        self.info(name)
        for index, catalogue in enumerate(self.catalogues):
            rank = catalogue.rank(name)
            if rank is not None:
                position, number = rank
                if index == self.ranked_by_name:
                    trailing = re.search(r"(\d+)$", name)
                    position, number = 0, int(trailing[1]) if trailing else 0
                return (index * 1000 + position) * 1000 + min(number, 999)
        raise AssertionError(name)

    def variable_info(self, name: str) -> MetricInfo:
        """The entry of a MetricSet variable: a metric's own, a curve's (its metric's, or a
        clock's), a floor's (a status: the reference's noise floor of its metric), a
        reliability curve's or correlation pairs'."""
        if name.startswith(CURVE_PREFIX):
            metric = name.removeprefix(CURVE_PREFIX)
            return CLOCKS.get(metric) or self.info(metric)
        if name.startswith(FLOOR_PREFIX):
            metric = name.removeprefix(FLOOR_PREFIX)
            return dataclasses.replace(
                self.info(metric),
                description=f"{metric} of disjoint reference draws, as many as a checkpoint's: "
                "the noise floor an exact q would score",
                kind="status",
                roles=(),
            )
        if name.startswith(RELIABILITY_PREFIX):
            what = name.removeprefix(RELIABILITY_PREFIX)
            return neutral(f"reliability curve per calibration bin: {what}")
        if name.startswith(PAIR_PREFIX):
            what = name.removeprefix(PAIR_PREFIX)
            return neutral(f"pairwise correlation per parameter pair j < k: {what}")
        return self.info(name)

    def __call__(self, name: str) -> dict[str, str | float | int]:
        """The attributes every MetricSet variable carries: ``description``, ``better``,
        ``hint``, ``kind``, ``unit``, ``bound`` (NaN when unbounded), ``legend_rank`` (its place
        in the legend's order), ``roles`` (JSON: report role → rank) and ``title``."""
        entry = self.variable_info(name)
        base = name.removeprefix(CURVE_PREFIX).removeprefix(FLOOR_PREFIX)
        unranked = base in CLOCKS or name.startswith((RELIABILITY_PREFIX, PAIR_PREFIX))
        return {
            "description": entry.description,
            "better": entry.better,
            "hint": entry.hint,
            "kind": entry.kind,
            "unit": entry.unit,
            "bound": float("nan") if entry.bound is None else entry.bound,
            "legend_rank": LAST_RANK if unranked else self.legend_rank(base),
            "roles": json.dumps(dict(entry.roles)),
            "title": entry.title or base,
        }


def describer(status: Catalogue, diagnostics: Catalogue) -> Describer:
    """The metadata of a run's MetricSet, in legend order: the metric groups, the held-out
    scores, the run's ``status``, the reference's held-out scores, the method's
    ``diagnostics``."""
    groups, held_out = evaluation_producers()
    catalogues = (*groups, held_out, status, reference_scores(held_out), diagnostics)
    return Describer(catalogues, ranked_by_name=len(catalogues) - 1)
