"""The reproduction table: each row's figure from three sources of evidence.

Each row of the config's ``reproduction`` list names a (target, method label, metric), the
paper's value where one was quoted, and optionally the official code that ran the same
experiment (``anchor_repo``, ``anchor_config``: a configuration of ``benchmarks/anchors/``,
whose committed results file ``anchors.csv`` the report reads). The table gives:

- the paper's figure (``—`` when none was quoted; the row's ``note`` then says why);
- the official code run here, scored the project's way: mean ± sd over its seeds, with the
  official commit;
- this project: mean ± sd over the seeds of the ok, non-suspect runs
  (:func:`~sivi_engine.report.tables.summarise_seeds`); official runs that are suspect or
  diverged are likewise counted, never averaged;
- a verdict. Against the official code when it ran: ``matches`` when
  |project − official| ≤ 2·s_pooled (s_pooled² = ((n₁−1)s₁² + (n₂−1)s₂²) / (n₁+n₂−2), the
  pooled seed sd), else ``better`` or ``worse`` in the metric's direction
  (its MetricSet metadata, :mod:`~sivi_engine.report.legend`; ``differs`` for a metric
  without one); a
  divergence (KL, MMD²) whose two means are both ≤ 0 matches, as neither can be told from
  exact draws.
  Otherwise against the paper's figure:
  ``within seed spread`` when |paper − mean| ≤ 2·sd over the project's seeds, else ``outside``
  (the paper's own ± is shown, not used). ``n < 2`` when a side has fewer than two usable
  seeds, ``not run`` when the report holds no run of the (target, label), ``official not
  run`` when the anchors file has no run of the row's anchor, ``no paper figure`` when there
  is neither an anchor nor a paper figure.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sivi_engine.report import tables
from sivi_engine.report.legend import LegendEntry, entry
from sivi_engine.report.tables import MISSING, SeedSummary, Table
from sivi_engine.settings import SettingsError

#: The verdicts' tolerance in seed sds: |paper − mean| ≤ SPREAD_SDS · sd, and
#: |project − official| ≤ SPREAD_SDS · pooled sd.
SPREAD_SDS = 2.0
WITHIN, OUTSIDE, FEW_SEEDS, NOT_RUN = "within seed spread", "outside", "n < 2", "not run"
MATCHES, BETTER, WORSE, DIFFERS = "matches", "better", "worse", "differs"
NO_FIGURE, NO_OFFICIAL = "no paper figure", "official not run"

HEADER = (
    "experiment",
    "target",
    "method",
    "metric",
    "paper",
    "official code here (mean ± sd over seeds)",
    "this project (mean ± sd over seeds)",
    "verdict",
    "source",
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
    anchor_repo: str | None = None  # e.g. longinYu/KSIVI
    anchor_config: str | None = None  # e.g. banana.yml (the anchors file's ``config``)


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
        if ("anchor_repo" in item) != ("anchor_config" in item):
            raise SettingsError(
                f"reproduction[{index}]: 'anchor_repo' and 'anchor_config' go together "
                "(the official repository and the config its anchor runs used)"
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
    """Against the paper: :data:`WITHIN` when |paper − mean| ≤ :data:`SPREAD_SDS` · sd over
    seeds, else :data:`OUTSIDE`; :data:`FEW_SEEDS` with fewer than two usable seeds;
    :data:`NO_FIGURE` without a paper value."""
    if paper is None:
        return NO_FIGURE
    if seeds.n < 2:
        return FEW_SEEDS
    return WITHIN if abs(paper - seeds.mean) <= SPREAD_SDS * seeds.sd else OUTSIDE


def pooled_sd(a: SeedSummary, b: SeedSummary) -> float:
    """√(((n₁−1)s₁² + (n₂−1)s₂²) / (n₁+n₂−2)), the two groups' pooled sample sd."""
    return math.sqrt(((a.n - 1) * a.sd**2 + (b.n - 1) * b.sd**2) / (a.n + b.n - 2))


def improves(value: float, than: float, better: str) -> bool | None:
    """Whether ``value`` is better than ``than`` for a metric whose ``better`` is "lower",
    "higher" or "closest to X"; None for a metric without a direction."""
    if better == "lower":
        return value < than
    if better == "higher":
        return value > than
    if better.startswith("closest to "):
        ideal = float(better.removeprefix("closest to "))
        return abs(value - ideal) < abs(than - ideal)
    return None


def anchored_verdict(official: SeedSummary, project: SeedSummary, metric: LegendEntry) -> str:
    """Against the official code: :data:`MATCHES` when |project − official| ≤
    :data:`SPREAD_SDS` · :func:`pooled_sd`, else :data:`BETTER` or :data:`WORSE` by the
    metric's direction (:data:`DIFFERS` for a metric without one); :data:`FEW_SEEDS` when a
    side has fewer than two usable seeds. A divergence whose two means both lie at or below
    its bound 0 matches: neither is distinguishable from exact draws."""
    if official.n < 2 or project.n < 2:
        return FEW_SEEDS
    bound = metric.bound
    if bound is not None and max(project.mean, official.mean) <= bound:
        return MATCHES
    if abs(project.mean - official.mean) <= SPREAD_SDS * pooled_sd(official, project):
        return MATCHES
    better = improves(project.mean, official.mean, metric.better)
    return DIFFERS if better is None else BETTER if better else WORSE


#: Columns of an anchors file that the table reads.
ANCHOR_COLUMNS = ("repo", "commit", "config", "target", "seed", "metric", "value")


def read_anchors(path: str | Path) -> list[dict[str, str]]:
    """The rows of an anchors file (``benchmarks/results/anchors.csv``: one row per
    repo, commit, script, config, target, seed, metric), as strings; a missing file or column
    raises a SettingsError naming it."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(
            f"anchors file {path} not found (benchmarks/anchors/collect.py writes it)"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in ANCHOR_COLUMNS if name not in (reader.fieldnames or ())]
        if missing:
            needs = ", ".join(ANCHOR_COLUMNS)
            raise SettingsError(f"anchors file {path}: missing column(s) {missing}; needs {needs}")
        return list(reader)


def anchor_seeds(
    row: ReproductionRow, anchors: Sequence[Mapping[str, str]]
) -> tuple[SeedSummary, str] | None:
    """The row's metric over the official runs of its anchor, and their commit(s); None when
    the row has no anchor or the file holds no run of it. A run flagged ``diverged`` or
    ``suspect`` is counted, not averaged, as the project's are."""
    if row.anchor_repo is None:
        return None
    runs: dict[str, dict[str, float]] = {}
    commits = set()
    for line in anchors:
        if (line["repo"], line["config"], line["target"]) == (
            row.anchor_repo,
            row.anchor_config,
            row.target,
        ):
            runs.setdefault(line["seed"], {})[line["metric"]] = float(line["value"])
            commits.add(line["commit"][:7])
    if not runs:
        return None
    values = np.array([run.get(row.metric, math.nan) for run in runs.values()])
    condition = np.array(
        [
            next((flag for flag in tables.EXCLUSIONS if run.get(flag) == 1.0), tables.OK)
            for run in runs.values()
        ]
    )
    return tables.summarise_seeds(values, condition), ", ".join(sorted(commits))


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


def reproduction_table(
    rows: Sequence[ReproductionRow],
    combined: xr.Dataset,
    anchors: Sequence[Mapping[str, str]] = (),
) -> Table:
    """One line per row: the paper's figure, the official code's and the project's seed
    summaries and the verdict (see the module docstring); ``anchors`` are the rows of an
    anchors file (:func:`read_anchors`)."""
    lines = []
    for row in rows:
        seeds = row_seeds(row, combined)
        official = anchor_seeds(row, anchors)
        official_cell = (
            MISSING
            if official is None
            else f"{tables.format_seed_summary(official[0])} @{official[1]}"
        )
        if seeds is None:
            judged = NOT_RUN
        elif official is not None:
            judged = anchored_verdict(official[0], seeds, entry(combined, row.metric))
        elif row.paper is None and row.anchor_repo is not None:
            judged = NO_OFFICIAL
        else:
            judged = verdict(row.paper, seeds)
        lines.append(
            (
                row.experiment,
                row.target,
                row.method,
                row.metric,
                paper_cell(row),
                official_cell,
                MISSING if seeds is None else tables.format_seed_summary(seeds),
                judged,
                row.source,
                row.note,
            )
        )
    return Table(HEADER, tuple(lines))
