"""The reproduction table: figures the papers report set against this project's runs.

Each row of the config's ``reproduction`` list names a (target, method label, metric) and the
paper's value; the table adds the project's mean ± sd over the seeds of the ok, non-suspect
runs (:func:`~sivi_engine.report.tables.summarise_seeds`) and a verdict:

- ``within seed spread`` when |paper − mean| ≤ 2·sd, sd the sample sd (ddof = 1) over seeds;
- ``outside`` otherwise;
- ``n < 2`` when fewer than two usable seeds have a value (no sd to compare with);
- ``not run`` when the report holds no run of the (target, label);
- ``no paper figure`` when the row gives none (``paper`` left out: the paper shows the quantity
  only in a plot, or its tables could not be read from any stored source); the row's ``note``
  then says which, and the project's figure stands alone.

The paper's own ± sd is shown but does not enter the verdict.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from sivi_engine.report import tables
from sivi_engine.report.tables import MISSING, SeedSummary, Table
from sivi_engine.settings import SettingsError

#: The verdict's tolerance in seed sds: within when |paper − mean| ≤ SPREAD_SDS · sd.
SPREAD_SDS = 2.0
WITHIN, OUTSIDE, FEW_SEEDS, NOT_RUN = "within seed spread", "outside", "n < 2", "not run"
NO_FIGURE = "no paper figure"

HEADER = (
    "experiment",
    "target",
    "method",
    "metric",
    "paper",
    "source",
    "this project (mean ± sd over seeds)",
    "verdict",
    "note",
)


@dataclasses.dataclass(frozen=True)
class ReproductionRow:
    """One ``reproduction`` entry of the config (workflow/schemas/config.schema.yaml)."""

    experiment: str
    target: str
    method: str  # a config label
    metric: str
    source: str
    paper: float | None = None
    paper_sd: float | None = None
    note: str = ""


REQUIRED = tuple(
    f.name for f in dataclasses.fields(ReproductionRow) if f.default is dataclasses.MISSING
)
ALLOWED = tuple(f.name for f in dataclasses.fields(ReproductionRow))


def parse_rows(config: Mapping[str, Any]) -> list[ReproductionRow]:
    """The config's ``reproduction`` rows (none when the key is absent); a row with a missing or
    unknown field raises a SettingsError naming it and the allowed fields."""
    rows = []
    for index, item in enumerate(config.get("reproduction") or []):
        missing = [name for name in REQUIRED if name not in item]
        unknown = sorted(set(item) - set(ALLOWED))
        if missing or unknown:
            problem = f"missing {missing}" if missing else f"unknown {unknown}"
            raise SettingsError(
                f"reproduction[{index}]: {problem} field(s); fields: {', '.join(ALLOWED)} "
                f"(required: {', '.join(REQUIRED)})"
            )
        if item.get("paper") is None and not item.get("note"):
            raise SettingsError(
                f"reproduction[{index}]: a row without 'paper' needs a 'note' "
                "saying why the paper's figure is not given"
            )
        paper, paper_sd = item.get("paper"), item.get("paper_sd")
        rows.append(
            ReproductionRow(
                **{
                    **item,
                    "paper": None if paper is None else float(paper),
                    "paper_sd": None if paper_sd is None else float(paper_sd),
                }
            )
        )
    return rows


def verdict(paper: float | None, seeds: SeedSummary) -> str:
    """:data:`WITHIN` when |paper − mean| ≤ :data:`SPREAD_SDS` · sd over seeds, else
    :data:`OUTSIDE`; :data:`FEW_SEEDS` with fewer than two usable seeds; :data:`NO_FIGURE`
    without a paper value."""
    if paper is None:
        return NO_FIGURE
    if seeds.n < 2:
        return FEW_SEEDS
    return WITHIN if abs(paper - seeds.mean) <= SPREAD_SDS * seeds.sd else OUTSIDE


def row_seeds(row: ReproductionRow, combined: xr.Dataset) -> SeedSummary | None:
    """The row's metric over the seeds of its (target, label) in ``combined`` (dims target,
    method, seed); None when the report holds no run of the pair."""
    if row.target not in combined["target"].values or row.method not in combined["method"].values:
        return None
    # a dict, not method=...: ``sel`` reserves the keyword ``method`` for inexact matching
    runs = combined.sel({"target": row.target, "method": row.method})
    condition = tables.run_condition(runs).values
    if (condition == tables.ABSENT).all():
        return None
    missing = np.full(condition.shape, math.nan)  # a metric no run of the report has
    values = runs[row.metric].values if row.metric in runs.data_vars else missing
    return tables.summarise_seeds(values, condition)


def paper_cell(row: ReproductionRow) -> str:
    """The paper's value as given (``%g``), with ``± paper_sd`` when reported."""
    if row.paper is None:
        return MISSING
    return f"{row.paper:g}" if row.paper_sd is None else f"{row.paper:g} ± {row.paper_sd:g}"


def reproduction_table(rows: Sequence[ReproductionRow], combined: xr.Dataset) -> Table:
    """One line per row: the paper's figure and source, the project's seed summary and the
    verdict (see the module docstring)."""
    lines = []
    for row in rows:
        seeds = row_seeds(row, combined)
        project, judged = (
            (MISSING, NOT_RUN)
            if seeds is None
            else (tables.format_seed_summary(seeds), verdict(row.paper, seeds))
        )
        lines.append(
            (
                row.experiment,
                row.target,
                row.method,
                row.metric,
                paper_cell(row),
                row.source,
                project,
                judged,
                row.note,
            )
        )
    return Table(HEADER, tuple(lines))
