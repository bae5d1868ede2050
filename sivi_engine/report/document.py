"""The report's content as a list of blocks, shared by the Markdown and HTML renderings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sivi_engine.report.render import Block, Bullets, Code, Heading, Paragraph, TableBlock
from sivi_engine.report.runs import RunSummary
from sivi_engine.report.tables import Table

TITLE = "SIVI benchmark report"

TABLE_NOTE = (
    "Each cell is mean ± sd over seeds (sd with ddof = 1; the mean alone for one seed), "
    "to 3 significant digits. Metrics without a value for a target are left out. "
    "Header marks: ↓ lower is better, ↑ higher is better, ≈v closest to v is best."
)

COST_NOTE = (
    "Wall time and peak resident memory of every job, from Snakemake's benchmark files: "
    "per rule, then per method for the training jobs."
)


def format_duration(seconds: float) -> str:
    """``12.3 s``, ``4 min 5 s`` or ``1 h 2 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _listing(values: Sequence[object]) -> str:
    return f"{len(values)} ({', '.join(str(v) for v in values)})"


def run_summary(summary: RunSummary, total_wall_seconds: float | None) -> list[str]:
    """Bullet points: what was run, how many runs diverged, how long it took."""
    n_ok = summary.n_runs - len(summary.diverged)
    items = [
        f"targets: {_listing(summary.targets)}",
        f"methods: {_listing(summary.labels)}",
        f"seeds: {_listing(summary.seeds)}",
        f"runs: {summary.n_runs} ({n_ok} ok, {len(summary.diverged)} diverged)",
        *(f"diverged: {r.target} / {r.label} / seed {r.seed}" for r in summary.diverged),
        f"training wall time, summed over runs: {format_duration(summary.train_seconds)}",
    ]
    if total_wall_seconds is not None:
        items.append(f"total wall time (first training job to this report): {format_duration(total_wall_seconds)}")
    return items


def document(
    *,
    created: str,
    summary: RunSummary,
    total_wall_seconds: float | None,
    tables: Mapping[str, Table],
    views: Mapping[str, Sequence[Block]],
    legend: Table,
    versions: Table,
    config_text: str | None,
    costs: Sequence[Table] = (),
) -> list[Block]:
    """All sections of the report, in reading order; under each target's metric table come the
    blocks of its ``views`` (figures, further tables)."""
    blocks: list[Block] = [
        Heading(1, TITLE),
        Paragraph(f"Generated {created}."),
        Heading(2, "Run summary"),
        Bullets(tuple(run_summary(summary, total_wall_seconds))),
        Heading(2, "Results per target"),
        Paragraph(TABLE_NOTE),
    ]
    for target, table in tables.items():
        blocks += [Heading(3, target), TableBlock(table), *views.get(target, ())]
    if costs:
        blocks += [Heading(2, "Cost"), Paragraph(COST_NOTE), *(TableBlock(t) for t in costs)]
    blocks += [
        Heading(2, "Metric legend"),
        TableBlock(legend, numeric=False),
        Heading(2, "Versions"),
        TableBlock(versions, numeric=False),
    ]
    if config_text is not None:
        blocks += [Heading(2, "Configuration"), Code(config_text, "yaml")]
    return blocks
