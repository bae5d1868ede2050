"""Gather scored anchor runs into ``benchmarks/results/anchors.csv``.

    python benchmarks/anchors/collect.py [--runs results/anchors] [--out FILE]

One row per (repository, commit, script, config, target, seed, metric), columns
:data:`COLUMNS`: every final metric of each run's MetricSet (not its curves or floors), plus
``iterations`` and ``seconds_per_1000_iterations`` of the official ``learn()``.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = (
    "repo",
    "commit",
    "script",
    "config",
    "target",
    "seed",
    "wall_seconds",
    "threads",
    "metric",
    "value",
)


def rows_of(metrics_path: Path) -> Iterator[dict[str, object]]:
    """The CSV rows of one scored anchor run (its SampleSet sits beside the MetricSet)."""
    from sivi_engine import artifacts
    from sivi_engine.artifacts import CURVE_PREFIX, FLOOR_PREFIX, RELIABILITY_PREFIX

    metrics = artifacts.read(metrics_path, artifacts.METRIC_SET)
    samples = artifacts.read(metrics_path.with_name("samples.zarr"), artifacts.SAMPLE_SET)
    attrs = samples.attrs
    variant = metrics_path.parent.parent.name
    config = attrs["anchor_config"] + variant.removeprefix(Path(attrs["anchor_config"]).stem)
    wall = float(attrs["wall_seconds"])
    iterations = int(attrs["iterations"])
    common = {
        "repo": attrs["anchor_repository"],
        "commit": attrs["anchor_commit"],
        "script": attrs["anchor_script"],
        "config": config,
        "target": attrs["target"],
        "seed": int(attrs["seed"]),
        "wall_seconds": f"{wall:.6g}",
        "threads": int(attrs["anchor_threads"]),
    }
    values = {
        name: float(metrics[name].values.item())
        for name in sorted(metrics.data_vars)
        if not name.startswith((CURVE_PREFIX, FLOOR_PREFIX, RELIABILITY_PREFIX))
    }
    values |= {
        "iterations": float(iterations),
        "seconds_per_1000_iterations": 1000 * wall / iterations,
    }
    for metric, value in values.items():
        if not math.isnan(value):
            yield common | {"metric": metric, "value": f"{value:.6g}"}


def write_csv(rows: list[dict[str, object]], out: Path) -> None:
    rows = sorted(rows, key=lambda r: tuple(str(r[c]) for c in COLUMNS[:6]) + (r["metric"],))
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "results/anchors")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/anchors.csv")
    args = parser.parse_args(argv)
    paths = sorted(args.runs.glob("*/*/*/seed*/metrics.zarr"))
    rows = [row for path in paths for row in rows_of(path)]
    write_csv(rows, args.out)
    print(f"wrote {args.out}: {len(paths)} runs, {len(rows)} rows")


if __name__ == "__main__":
    main()
