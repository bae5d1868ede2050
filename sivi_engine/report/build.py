"""Build the report: combined metric table, CSV, figures, summary.md, reproduction.md and
index.html."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr
import yaml

from sivi_engine import artifacts, provenance
from sivi_engine.report import costs, reproduction, splits, tables, views
from sivi_engine.report import runs as rn
from sivi_engine.report.document import TITLE, NotRun, document, reproduction_blocks
from sivi_engine.report.output import write_atomic
from sivi_engine.report.render import Image, to_html, to_markdown


def combine(
    metric_sets: Sequence[xr.Dataset],
    summary: rn.RunSummary,
    created: str,
    versions: Mapping[str, str],
) -> xr.Dataset:
    """One MetricSet over all runs, targets and labels in the order the runs were given."""
    combined = artifacts.combine_metric_sets(
        metric_sets, created=created, versions=artifacts.json_attr(dict(versions))
    )
    # dict form: a `method=` keyword would be taken as reindex's fill method
    return combined.reindex({"target": list(summary.targets), "method": list(summary.labels)})


def write_metric_table(combined: xr.Dataset, table_path: Path) -> None:
    """The combined MetricSet at ``table_path`` and the tidy CSV next to it (same stem)."""
    artifacts.write(combined, table_path, artifacts.METRIC_SET)
    csv = tables.tidy_frame(combined).to_csv(index=False)
    write_atomic(table_path.with_suffix(".csv"), csv)


def loop_seconds(combined: xr.Dataset) -> float:
    """Training-loop seconds summed over the runs: each run's clock at its last checkpoint
    (checkpoint sampling excluded), or its training wall seconds where it has no curves."""
    if "curve_seconds" in combined.data_vars:
        last = combined["curve_seconds"].max("checkpoint", skipna=True)
        if "wall_seconds" in combined.data_vars:
            last = last.fillna(combined["wall_seconds"])
        return float(last.sum(skipna=True))
    return float(combined["wall_seconds"].sum(skipna=True))


def cost_tables(
    paths: Sequence[Path], root: Path | None, combined: xr.Dataset
) -> list[tables.Table]:
    """The split of the jobs' time into training loops and overhead, then per-rule and
    per-method cost tables; none without benchmark files."""
    if not paths:
        return []
    if root is None:
        raise ValueError("benchmark files need their root directory (benchmark_root)")
    frame = costs.read_benchmarks(paths, Path(root))
    split = costs.cost_split(frame, loop_seconds(combined))
    return [split, costs.cost_by_rule(frame), costs.cost_by_method(frame)]


def not_run_pairs(config: Mapping[str, object]) -> list[NotRun]:
    """The config snapshot's ``not_run`` list: (target, label) pairs whose method declares it
    cannot run the target, with the reason."""
    return [
        NotRun(str(p["target"]), str(p["label"]), str(p["reason"]))
        for p in config.get("not_run", [])
    ]


def build_report(
    stores: rn.ReportStores,
    out_dir: Path,
    table_path: Path | None = None,
    config_path: Path | None = None,
    total_wall_seconds: float | None = None,
    anchor_paths: Sequence[Path] = (),
    benchmark_paths: Sequence[Path] = (),
    benchmark_root: Path | None = None,
) -> None:
    """Read the runs' MetricSets and SampleSets and the targets' ReferenceDraws and
    TargetDescriptions (``stores``: every store read is one of these) and write
    ``out_dir``/{summary.md, reproduction.md, index.html, figures/*.png}; the headline section
    draws the MetricSets' per-checkpoint curves.

    The reproduction rows come from the ``reproduction`` list of the config at ``config_path``
    (none without a config; reproduction.md is written either way), set against the official
    codes' scored runs in the anchors files ``anchor_paths``
    (:func:`~sivi_engine.report.reproduction.read_anchors`).
    With ``table_path`` also write the combined MetricSet there and a tidy CSV next to it.
    With ``benchmark_paths`` (Snakemake benchmark files below ``benchmark_root``) add a cost
    section: wall time and peak memory per rule and per method.
    """
    if not stores.metrics:
        raise ValueError("build_report needs at least one per-run MetricSet")
    out_dir = Path(out_dir)
    config_text = Path(config_path).read_text("utf-8") if config_path is not None else None
    config = (yaml.safe_load(config_text) or {}) if config_text else {}
    rows = reproduction.parse_rows(config)
    sample_sets = rn.sample_set_index(stores.samples)
    references = rn.target_index(stores.references, artifacts.REFERENCE_DRAWS)
    descriptions = rn.target_index(stores.descriptions, artifacts.TARGET_DESCRIPTION)
    loaded = [rn.read_run(Path(p), sample_sets, references) for p in stores.metrics]
    runs = [run for _, run in loaded]
    summary = rn.summarise_runs(runs)
    versions = rn.merged_versions(runs)
    created = provenance.now()
    if total_wall_seconds is None:  # from the first training job's start to this report
        first_start = min(run.started for run in runs)
        total_wall_seconds = datetime.datetime.fromisoformat(created).timestamp() - first_start
    combined = combine([ds for ds, _ in loaded], summary, created, versions)
    if table_path is not None:
        write_metric_table(combined, Path(table_path))
    data = views.target_data(runs, summary, combined, descriptions)
    along_training = views.target_views(data, views.HEADLINE_VIEWS)
    target_blocks = views.target_views(data)
    anchors = [line for path in anchor_paths for line in reproduction.read_anchors(path)]
    reproduced = reproduction_blocks(reproduction.reproduction_table(rows, combined, anchors))
    blocks = document(
        created=created,
        summary=summary,
        total_wall_seconds=total_wall_seconds,
        tables=tables.target_tables(combined),
        views=target_blocks,
        along_training=along_training,
        legend=tables.legend_table(combined, tables.reported_metrics(combined)),
        versions=tables.key_value_table(("package", "version"), versions),
        config_text=config_text,
        reproduction=reproduced,
        not_run=not_run_pairs(config),
        costs=cost_tables(benchmark_paths, benchmark_root, combined),
        split_tables={
            group.title: splits.split_table(combined, group, summary.labels)
            for group in splits.split_groups(runs)
        },
    )
    sections = (*along_training.values(), *target_blocks.values())
    for block in (b for blocks_of in sections for b in blocks_of):
        if isinstance(block, Image):
            write_atomic(out_dir / block.path, block.png)
    write_atomic(out_dir / "summary.md", to_markdown(blocks))
    write_atomic(out_dir / "reproduction.md", to_markdown(reproduced))
    write_atomic(out_dir / "index.html", to_html(blocks, TITLE))
