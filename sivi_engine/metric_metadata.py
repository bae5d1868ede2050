"""The metadata a metric declares where it is computed: what it means, which way is better, what
kind of quantity it is and its unit, and where the report shows it. Pure Python.

Each producer of MetricSet variables declares a :class:`Catalogue` next to its code: the
metrics package's estimator modules, the evaluation step (the run's status), each method (its
diagnostics, ``Method.diagnostics``) and each target with held-out data (its predictive scores,
``HeldOutData.predictive_metrics``). :mod:`sivi_engine.metric_catalogue` gathers them, and every
MetricSet variable carries its entry as attributes.

Kinds: ``score`` (how good q is: the tables' columns), ``diagnostic`` (a method's or an
estimator's own quantity, e.g. the ELBO sandwich, the MMD bandwidth), ``status`` (about the run
rather than q: its flags, draw counts, the reference's own scores and noise floors)."""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: The report's roles: ``headline``, the compact table that heads a target's section — the
#: discrepancies that are consistent in any dimension and measured worse for a q with sds 0.7×
#: or 1.4× the truth or a mean 0.5 sd off than for exact draws, in 2-D and in 22-D
#: (tests/test_metrics.py; the kNN KL is not among them: at d ≫ 2 its bias exceeds the
#: differences it should show, −1.8 for SVGD on the waveform); ``curve``, the figure of quality
#: along training; ``predictive``, the held-out table; ``split``, the table over random splits
#: of a data set; ``elbo``, the table of an explicit q's bounds (DSIVI §5.3).
ROLES = ("headline", "curve", "predictive", "split", "elbo")
KINDS = ("score", "diagnostic", "status")


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """Legend entry: a one-line description and the direction in which the metric improves;
    ``bound``: the least value the estimated quantity can take (0 for a divergence, whose
    estimates can dip below it by noise), None when unbounded."""

    description: str
    better: str
    hint: str  # short marker for table headers: ↓, ↑, ≈1, ...
    bound: float | None = None
    kind: str = "score"
    unit: str = ""
    #: Where the report shows the metric beyond its tables: role → rank among that role's
    #: metrics (:data:`ROLES`); ``title`` heads its column where a table wants a short name.
    roles: tuple[tuple[str, int], ...] = ()
    title: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        unknown = {role for role, _ in self.roles} - set(ROLES)
        if unknown:
            raise ValueError(f"roles must be among {', '.join(ROLES)}, got {sorted(unknown)}")

    def marked(self, kind: str, unit: str = "") -> MetricInfo:
        """This entry as another kind (and unit)."""
        return dataclasses.replace(self, kind=kind, unit=unit or self.unit)

    def shown(self, *roles: tuple[str, int], title: str = "") -> MetricInfo:
        """This entry with report roles (and a column title)."""
        return dataclasses.replace(self, roles=self.roles + roles, title=title or self.title)


def lower(description: str, unit: str = "") -> MetricInfo:
    return MetricInfo(description, "lower", "↓", unit=unit)


def divergence(description: str) -> MetricInfo:
    """A discrepancy that is 0 at q = p (its estimates may dip below by noise)."""
    return MetricInfo(description, "lower", "↓", bound=0.0)


def higher(description: str) -> MetricInfo:
    return MetricInfo(description, "higher", "↑")


def ideal(description: str, value: float) -> MetricInfo:
    return MetricInfo(description, f"closest to {value:g}", f"≈{value:g}")


def neutral(description: str, kind: str = "status", unit: str = "") -> MetricInfo:
    """An entry with no better direction (a count, a setting, a bandwidth)."""
    return MetricInfo(description, "—", "", kind=kind, unit=unit)


class UndeclaredMetricError(KeyError):
    """A metric name that its producer does not declare."""

    def __str__(self) -> str:
        return str(self.args[0])


def entries_to_json(entries: Mapping[str, MetricInfo]) -> dict[str, dict[str, Any]]:
    """``entries`` as JSON-ready dicts (a SampleSet carries its method's this way)."""
    return {name: dataclasses.asdict(info) for name, info in entries.items()}


def entries_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, MetricInfo]:
    """The inverse of :func:`entries_to_json`."""
    return {
        name: MetricInfo(**{**fields, "roles": tuple(tuple(role) for role in fields["roles"])})
        for name, fields in data.items()
    }


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """What a producer declares: ``always``, the names every result of it holds (a method's
    contract test checks them); ``sometimes``, names it holds where they apply; ``numbered``,
    families of numbered names, regex with one group → its entry built from the group (e.g.
    ``elbo_lower_k(\\d+)``). Order is the legend's: ``always`` then ``sometimes`` then the
    families."""

    always: Mapping[str, MetricInfo] = dataclasses.field(default_factory=dict)
    sometimes: Mapping[str, MetricInfo] = dataclasses.field(default_factory=dict)
    numbered: Mapping[str, Callable[[str], MetricInfo]] = dataclasses.field(default_factory=dict)

    @property
    def named(self) -> dict[str, MetricInfo]:
        return {**self.always, **self.sometimes}

    def info(self, name: str) -> MetricInfo | None:
        """The entry of ``name``, None where this catalogue does not declare it."""
        named = self.named
        if name in named:
            return named[name]
        for pattern, build in self.numbered.items():
            match = re.fullmatch(pattern, name)
            if match:
                return build(match[1])
        return None

    def rank(self, name: str) -> tuple[int, int] | None:
        """(position, number): a named entry's place, or a family's place after the named ones
        and the name's number; None where undeclared."""
        named = list(self.named)
        if name in named:
            return named.index(name), 0
        for position, pattern in enumerate(self.numbered, start=len(named)):
            match = re.fullmatch(pattern, name)
            if match:
                return position, int(match[1])
        return None

    def resolve(self, names: Iterable[str], producer: str) -> dict[str, MetricInfo]:
        """The entry of each of ``names``; an :class:`UndeclaredMetricError` naming the
        ``producer`` and the names it did not declare."""
        entries = {name: self.info(name) for name in names}
        missing = sorted(name for name, info in entries.items() if info is None)
        if missing:
            raise UndeclaredMetricError(f"{producer} reports undeclared metrics {missing}")
        return {name: info for name, info in entries.items() if info is not None}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: each named entry's fields, and the numbered families' patterns."""
        return {
            "always": entries_to_json(self.always),
            "sometimes": entries_to_json(self.sometimes),
            "numbered": list(self.numbered),
        }

    def __or__(self, other: Catalogue) -> Catalogue:
        """Both declarations; a name both declare must mean the same (a shared entry)."""
        for name in self.named.keys() & other.named.keys():
            if self.named[name] != other.named[name]:
                raise ValueError(f"metric {name!r} is declared twice with different metadata")
        return Catalogue(
            {**self.always, **other.always},
            {**self.sometimes, **other.sometimes},
            {**self.numbered, **other.numbered},
        )


def union(catalogues: Iterable[Catalogue]) -> Catalogue:
    """The union of ``catalogues``, in order."""
    return functools.reduce(operator.or_, catalogues, Catalogue())
