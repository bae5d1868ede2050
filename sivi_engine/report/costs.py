"""Cost of a run from Snakemake's per-job ``benchmark:`` files: wall time and peak memory.

Benchmark files sit at ``{root}/{rule}/{job}.tsv`` (one header line, one row per repeat, columns
``s`` = wall seconds and ``max_rss`` = peak resident memory in MB among others); training jobs
are named ``{target}/{label}/seed{seed}.tsv`` below ``train/``, which gives the per-method view.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sivi_engine.report.tables import Table, format_number


def read_benchmarks(paths: Sequence[Path], root: Path) -> pd.DataFrame:
    """One row per job: rule, job name (path below the rule), wall seconds, peak RSS in MB."""
    rows = []
    for path in paths:
        rule, *job = Path(path).relative_to(root).with_suffix("").parts
        frame = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "rule": rule,
                "job": "/".join(job),
                "seconds": float(frame["s"].mean()),
                "max_rss_mb": pd.to_numeric(frame["max_rss"], errors="coerce").max(),
            }
        )
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "max_rss_mb"])


def _summary(frame: pd.DataFrame, by: pd.Series, name: str) -> Table:
    grouped = frame.groupby(by, sort=False)
    rows = tuple(
        (
            str(key),
            str(len(group)),
            format_number(group.seconds.sum()),
            format_number(group.seconds.mean()),
            format_number(group.seconds.max()),
            format_number(group.max_rss_mb.max()),
        )
        for key, group in grouped
    )
    header = (name, "jobs", "wall s (total)", "wall s (mean)", "wall s (max)", "peak RSS MB")
    return Table(header, rows)


def cost_by_rule(frame: pd.DataFrame) -> Table:
    """Jobs, wall time and peak memory per Snakemake rule."""
    return _summary(frame, frame.rule, "rule")


def cost_by_method(frame: pd.DataFrame) -> Table:
    """The same for training jobs, per method label (the second part of the job name)."""
    train = frame[frame.rule == "train"]
    return _summary(train, train.job.str.split("/").str[1], "method")
