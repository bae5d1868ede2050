"""The report's content as a list of blocks, shared by the Markdown and HTML renderings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from sivi_engine.report.render import (
    Block,
    Bullets,
    Code,
    Collapsed,
    Heading,
    Image,
    Paragraph,
    TableBlock,
)
from sivi_engine.report.reproduction import SPREAD_SDS
from sivi_engine.report.runs import Run, RunSummary
from sivi_engine.report.tables import Table

TITLE = "SIVI benchmark report"

BUDGET_NOTE = (
    "A budgeted comparison: every method ran for the iterations, or the wall-clock budget "
    "(budget_seconds), that the configuration gives it on this machine (the default grid took "
    "10 min 35 s from a fresh clone on 2 CPU cores, install included), so a method's final "
    "scores mix how fast it converges with how good it gets. Per target: one compact table "
    "of the final discrepancies that stay consistent in any dimension (MMD² at the median "
    "bandwidth and at five bandwidths, the sliced 1-Wasserstein distance in reference sds, and "
    "the density KL on normalised 2-D targets) with the time each method takes to reach the "
    "reference's own noise floor; then the curves, every metric against iterations and "
    "against training-loop seconds. For the papers' settings at their scale run the workflow "
    "with `--configfile config/paper.yaml`."
)
NO_CURVES = (
    "No MetricSet holds per-checkpoint curves (they predate checkpointing): rerun the "
    "evaluation to draw them."
)

TABLE_NOTE = (
    "Scores of each run's final draws, at its last iteration. "
    "Each cell is mean ± sd over seeds (sd with ddof = 1; the mean alone for one seed), "
    "to 3 significant digits, then n, the number of seeds averaged, and the runs left out, "
    "e.g. “0.012 ± 0.003 (n=2; 1 diverged)”. Only ok runs that pass the sanity gate are "
    "averaged: diverged runs (training diverged or non-finite draws) and suspect runs (the gate "
    "found the fit grossly wrong against a trustworthy reference) are counted, not averaged; "
    "results/metrics.csv keeps every run's values with its suspect and diverged flags. "
    "Metrics without a value for a target are left out. "
    "Header marks: ↓ lower is better, ↑ higher is better, ≈v closest to v is best."
)

SUSPECT_NOTE = (
    "Runs that did not diverge but that the evaluation's sanity gate flagged as grossly wrong "
    "against a trustworthy reference, with its reasons; they are left out of every mean below "
    "(diverged runs are listed in the run summary)."
)
NO_SUSPECT = "No run was flagged suspect by the sanity gate."
NOT_RUN_NOTE = (
    "Configured but left out of the grid: the method declares it cannot run the target "
    "(its `unsupported_targets`), for the reason given."
)

REPRODUCTION_NOTE = (
    "Each row: the paper's figure where one was quoted; the official code run on this machine "
    "at its shipped config and scored by this project's evaluation against the same reference "
    "(mean ± sd over its seeds, @commit; benchmarks/anchors/); this project (mean ± sd over "
    "seeds of the ok, non-suspect runs). Verdict against the official code: “matches” when "
    f"|project − official| ≤ {SPREAD_SDS:g}·s_pooled (pooled sample sd of the two sets of "
    "seeds), else “better” or “worse” in the metric's direction (a KL or MMD² whose two means "
    "are both ≤ 0 matches: neither is distinguishable from exact draws); without an official "
    f"run, against the paper: “within seed spread” when |paper − mean| ≤ {SPREAD_SDS:g}·sd_seeds, "
    "else “outside”. “n < 2” when a side has fewer than two usable seeds; “not run” when this "
    "report holds no run of the method on the target; “official not run” when the anchors file "
    "has none of the row's official configuration."
)
NO_REPRODUCTION = "The config lists no reproduction rows (key `reproduction`)."

SPLIT_NOTE = (
    "Held-out scores on the response's original scale, as the BNN papers tabulate them: per "
    "data set, each method's score on every random train/test split (the mean over seeds "
    "within a split), then mean ± standard error over the splits (sd with ddof = 1 over √S), "
    "and S, the splits counted (a diverged run leaves its split out; runs the sanity gate "
    "marks suspect count here, as the papers count every run, while the per-target tables "
    "below set them apart). The last row scores the "
    "reference draws the same way, where a reference was drawn; where none was (the large "
    "data sets), the held-out scores are the only comparison, and the per-target tables below "
    "have no sample metrics."
)

COST_NOTE = (
    "Wall time and peak resident memory of every job, from Snakemake's benchmark files: first "
    "where the time went (the training loops, which the budgets bound, against everything a "
    "run costs beyond them), then per rule, then per method for the training jobs."
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


def run_name(run: Run) -> str:
    """``target / label / seed N``, then the evaluation's reasons when it flagged the run."""
    name = f"{run.target} / {run.label} / seed {run.seed}"
    return f"{name}: {'; '.join(run.suspect_reasons)}" if run.suspect_reasons else name


def run_summary(summary: RunSummary, total_wall_seconds: float | None) -> list[str]:
    """Bullet points: what was run, how many runs diverged, how long it took."""
    n_ok = summary.n_runs - len(summary.diverged)
    items = [
        f"targets: {_listing(summary.targets)}",
        f"methods: {_listing(summary.labels)}",
        f"seeds: {_listing(summary.seeds)}",
        f"runs: {summary.n_runs} ({n_ok} ok, {len(summary.diverged)} diverged)",
        *(f"diverged: {run_name(r)}" for r in summary.diverged),
        f"suspect: {len(summary.suspect)} of the ok runs (left out of the means; see Suspect runs)",
        f"training wall time, summed over runs: {format_duration(summary.train_seconds)}",
    ]
    if total_wall_seconds is not None:
        items.append(
            "total wall time (first training job to this report): "
            f"{format_duration(total_wall_seconds)}"
        )
    return items


def suspect_blocks(summary: RunSummary) -> list[Block]:
    """Every suspect run as target / label / seed with the gate's reasons, or one line."""
    if not summary.suspect:
        return [Paragraph(NO_SUSPECT)]
    return [Paragraph(SUSPECT_NOTE), Bullets(tuple(run_name(r) for r in summary.suspect))]


@dataclasses.dataclass(frozen=True)
class NotRun:
    """A (target, label) pair left out of the grid: the label's method declares it cannot run
    the target (``Method.unsupported_targets``), for ``reason``."""

    target: str
    label: str
    reason: str


def not_run_blocks(pairs: Sequence[NotRun]) -> list[Block]:
    """The pairs left out of the grid with their reasons, one line per label and reason (its
    targets listed: a swept data set leaves out one pair per split), or nothing."""
    if not pairs:
        return []
    grouped: dict[tuple[str, str], list[str]] = {}
    for pair in pairs:
        grouped.setdefault((pair.label, pair.reason), []).append(pair.target)
    items = tuple(
        f"{', '.join(targets)} / {label}: {reason}" for (label, reason), targets in grouped.items()
    )
    return [Heading(2, "Not run"), Paragraph(NOT_RUN_NOTE), Bullets(items)]


def reproduction_blocks(table: Table) -> list[Block]:
    """The reproduction section's body, also the whole of reports/reproduction.md: the verdict
    rule and the table, or one line when the config lists no rows."""
    if not table.rows:
        return [Paragraph(NO_REPRODUCTION)]
    return [Paragraph(REPRODUCTION_NOTE), TableBlock(table, numeric=False)]


def along_training_blocks(views: Mapping[str, Sequence[Block]]) -> list[Block]:
    """The headline section's body: the budget note (and one line when no target has curve
    figures), then per target its blocks (headline table, curve figures)."""
    blocks: list[Block] = [Paragraph(BUDGET_NOTE)]
    if not any(isinstance(b, Image) for target_blocks in views.values() for b in target_blocks):
        blocks.append(Paragraph(NO_CURVES))
    for target, target_blocks in views.items():
        if target_blocks:
            blocks += [Heading(3, f"{target} (along training)"), *target_blocks]
    return blocks


def document(
    *,
    created: str,
    summary: RunSummary,
    total_wall_seconds: float | None,
    tables: Mapping[str, Table],
    views: Mapping[str, Sequence[Block]],
    along_training: Mapping[str, Sequence[Block]],
    legend: Table,
    versions: Table,
    config_text: str | None,
    reproduction: Sequence[Block],
    not_run: Sequence[NotRun] = (),
    costs: Sequence[Table] = (),
    split_tables: Mapping[str, Table] | None = None,
) -> list[Block]:
    """All sections of the report, in reading order: the headline section, quality along
    training, holds each target's ``along_training`` blocks (:func:`along_training_blocks`);
    under each target's metric table come the blocks of its ``views`` (figures, further
    tables); ``reproduction`` is the body of the reproduction section
    (:func:`reproduction_blocks`). ``split_tables``: per data set run over random splits,
    its table of held-out scores (:func:`sivi_engine.report.splits.split_table`), a section of
    its own before the per-target results."""
    blocks: list[Block] = [
        Heading(1, TITLE),
        Paragraph(f"Generated {created}."),
        Heading(2, "Run summary"),
        Bullets(tuple(run_summary(summary, total_wall_seconds))),
        Heading(2, "Quality along training"),
        *along_training_blocks(along_training),
        Heading(2, "Suspect runs"),
        *suspect_blocks(summary),
        *not_run_blocks(not_run),
    ]
    if split_tables:
        blocks += [Heading(2, "Held-out scores over splits"), Paragraph(SPLIT_NOTE)]
        for title, table in split_tables.items():
            blocks += [Heading(3, title), TableBlock(table)]
    blocks += [
        Heading(2, "Results per target"),
        Paragraph(TABLE_NOTE),
    ]
    for target, table in tables.items():
        summary = f"{target}: every metric ({len(table.header) - 1})"
        folded = Collapsed(summary, (TableBlock(table),))
        blocks += [Heading(3, target), folded, *views.get(target, ())]
    blocks += [Heading(2, "Reproduction"), *reproduction]
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
