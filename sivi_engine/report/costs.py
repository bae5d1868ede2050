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


#: Rules whose jobs are the per-run overhead of the benchmark, beside the training loops.
RUN_RULES = ("train", "evaluate")


def run_overhead_seconds(frame: pd.DataFrame, loop_seconds: float) -> float:
    """What the runs cost beyond their training loops: the train and evaluate jobs' wall
    seconds less ``loop_seconds``."""
    return float(frame.seconds[frame.rule.isin(RUN_RULES)].sum()) - loop_seconds


def cost_split(frame: pd.DataFrame, loop_seconds: float) -> Table:
    """Where the jobs' wall time went: the training loops (``loop_seconds``, summed over runs:
    the budgets that were spent), the rest of the train jobs (interpreter and torch start-up,
    target set-up, checkpoint and final draws, writing the store), the evaluate jobs and every
    other rule; each with its share of the training loops. The last row is the per-run overhead,
    train beyond the loop plus evaluate, as a share of the loops."""
    totals = frame.groupby("rule", sort=False).seconds.sum()
    train_beyond = totals.get("train", 0.0) - loop_seconds
    parts = [
        ("training loops", loop_seconds),
        ("train jobs beyond the loop", train_beyond),
        ("evaluate jobs", totals.get("evaluate", 0.0)),
        *((f"{rule} jobs", seconds) for rule, seconds in totals.items() if rule not in RUN_RULES),
        (
            "per-run overhead (train beyond the loop + evaluate)",
            run_overhead_seconds(frame, loop_seconds),
        ),
    ]

    def share(seconds: float) -> str:
        return f"{100 * seconds / loop_seconds:.0f} %" if loop_seconds > 0 else "—"

    rows = tuple((name, format_number(seconds), share(seconds)) for name, seconds in parts)
    return Table(("where the time went", "wall s", "of the training loops"), rows)
