"""What the report knows of a metric: the attributes its MetricSet variable carries (declared
where the metric is computed, :mod:`sivi_engine.metric_metadata`, and written by the
evaluation), never a list of its own."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable

import xarray as xr

from sivi_engine.artifacts import CURVE_PREFIX, FLOOR_PREFIX, RELIABILITY_PREFIX


@dataclasses.dataclass(frozen=True)
class LegendEntry:
    """A metric's description, direction (``better``: "lower", "higher", "closest to v", or
    "—"), header hint, kind ("score", "diagnostic", "status"), unit, the least value its
    estimated quantity can take (None: unbounded) and its place in the legend."""

    description: str
    better: str
    hint: str
    kind: str
    unit: str
    bound: float | None
    rank: int
    roles: dict[str, int] = dataclasses.field(default_factory=dict)
    title: str = ""


#: Prefixes of the variables holding a metric per checkpoint, floor or calibration bin: a role
#: names the metric itself.
PER_POINT_PREFIXES = (CURVE_PREFIX, FLOOR_PREFIX, RELIABILITY_PREFIX)
#: A variable without metadata (a store from before metrics carried it).
UNKNOWN = LegendEntry("(no description)", "—", "", "score", "", None, 10**9)


def entry(ds: xr.Dataset, name: str) -> LegendEntry:
    """The legend entry of variable ``name`` of ``ds``, from its attributes."""
    if name not in ds.data_vars or "description" not in ds[name].attrs:
        return UNKNOWN
    attrs = ds[name].attrs
    bound = float(attrs.get("bound", math.nan))
    return LegendEntry(
        description=str(attrs["description"]),
        better=str(attrs.get("better", "—")),
        hint=str(attrs.get("hint", "")),
        kind=str(attrs.get("kind", "score")),
        unit=str(attrs.get("unit", "")),
        bound=None if math.isnan(bound) else bound,
        rank=int(attrs.get("legend_rank", UNKNOWN.rank)),
        roles={str(k): int(v) for k, v in json.loads(attrs.get("roles", "{}")).items()},
        title=str(attrs.get("title", name)),
    )


def ordered(ds: xr.Dataset, names: Iterable[str]) -> list[str]:
    """``names`` in legend order (their ``legend_rank``, then alphabetically)."""
    return sorted(set(names), key=lambda name: (entry(ds, name).rank, name))


def header_cell(ds: xr.Dataset, name: str) -> str:
    """Metric name followed by its direction hint, e.g. ``kl_qp_knn ↓``."""
    return f"{name} {entry(ds, name).hint}".rstrip()


def with_role(ds: xr.Dataset, role: str, names: Iterable[str] | None = None) -> list[str]:
    """The variables of ``ds`` (or of ``names``) that the report shows in ``role`` (headline,
    curve, predictive, split), in their rank there, as their metadata says."""
    if names is None:
        names = [n for n in map(str, ds.data_vars) if not n.startswith(PER_POINT_PREFIXES)]
    candidates = names
    ranked = [(entry(ds, str(n)).roles.get(role), str(n)) for n in candidates]
    return [name for rank, name in sorted((r, n) for r, n in ranked if r is not None)]


def is_status(ds: xr.Dataset, name: str) -> bool:
    """Whether the variable is about the run rather than q (its flags, the reference's own
    scores and floors): the tables put it apart from the scores."""
    return entry(ds, name).kind == "status"
