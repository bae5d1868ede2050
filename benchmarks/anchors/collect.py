"""Gather scored anchor runs into ``benchmarks/results/anchors.csv`` and ``anchors.md``.

    python benchmarks/anchors/collect.py [--runs results/anchors] [--out FILE]

The CSV has one row per (repository, commit, script, config, target, seed, metric), columns
:data:`COLUMNS`: every final metric of each run's MetricSet (not its curves or floors), plus
``iterations`` and ``seconds_per_1000_iterations`` of the official ``learn()``. Runs already in
the file that ``--runs`` does not hold are kept (runs made in another session or on another
machine); a run found under ``--runs`` replaces the file's rows of the same run. The Markdown
beside it summarises each official configuration over its seeds (:data:`SUMMARY_METRICS`), the
side-by-side speed (``anchors_speed.json``, from ``speed.py``) and the official codes that
cannot run here (:data:`scripts.NOT_RUNNABLE`).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scripts import NOT_RUNNABLE, TARGETS  # noqa: E402

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
    wall = float(attrs["wall_seconds"])
    iterations = int(attrs["iterations"])
    common = {
        "repo": attrs["anchor_repository"],
        "commit": attrs["anchor_commit"],
        "script": attrs["anchor_script"],
        "config": attrs["anchor_config"],
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


#: Metrics summarised in anchors.md (those a target does not have are left out).
SUMMARY_METRICS = (
    "mmd2",
    "kl_qp_knn",
    "kl_pq_knn",
    "kl_qp_density",
    "mean_error_std",
    "sd_ratio_log_max",
    "tail_ratio_log_max",
    "corr_pearson_r",
    "test_log_likelihood",
)


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g} (n=1)"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g} (n={len(values)})"


def markdown(rows: list[dict[str, object]], speed: dict | None) -> str:
    """anchors.md: per official configuration, the mean ± sd over seeds of each summary
    metric; then the speed table and the codes that cannot run here."""
    groups: dict[tuple, dict[str, list[float]]] = {}
    for row in rows:
        key = (row["repo"], str(row["commit"])[:7], row["script"], row["config"], row["target"])
        groups.setdefault(key, {}).setdefault(str(row["metric"]), []).append(float(row["value"]))
    lines = [
        "# Anchors: the official codes run here, scored this project's way",
        "",
        f"`python benchmarks/anchors/collect.py` on {datetime.date.today().isoformat()}."
        " Each official script ran unchanged from a checkout (`benchmarks/anchors/run.py"
        " --repo PATH`) at its shipped config and full official length, one thread, with plots"
        " switched off and the seed set from outside; its final draws were scored by this"
        " project's `evaluate` step against the project's reference of the matching target, on"
        " the paper config's 1000 scored draws. Every run's metrics: `anchors.csv`.",
        "",
        "| repository | commit | script | config | target | seeds (suspect) "
        "| s / 1000 it | " + " | ".join(SUMMARY_METRICS) + " |",
        "|" + "---|" * (7 + len(SUMMARY_METRICS)),
    ]
    for (repo, commit, script, config, target), metrics in sorted(groups.items()):
        suspect = int(sum(metrics.get("suspect", [])))
        seconds = metrics["seconds_per_1000_iterations"]
        cells = [_mean_sd(metrics[name]) if name in metrics else "—" for name in SUMMARY_METRICS]
        lines.append(
            f"| {repo} | {commit} | {script} | {config} | {target} "
            f"| {len(seconds)} ({suspect}) | {statistics.median(seconds):.1f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "s / 1000 it: median over seeds of the official `learn()`'s wall seconds per 1000"
        " iterations while the suite ran (one or two runs at a time on two cores, beside other"
        " work): a cost, not a clean timing; the clean side-by-side timing is below.",
        "",
        "## Official and project targets",
        "",
        *(f"- `{name}` → `{match.target}`: {match.note}" for name, match in TARGETS.items()),
        "",
        "Every 2-D anchor run checks the official `logp` against the project's `log_prob` at"
        " 2000 reference draws: the spread of their difference (a constant for the same"
        " density) is stored in each SampleSet (`anchor_density_check`).",
        "",
    ]
    if speed:
        lines += [
            "## Speed, side by side",
            "",
            f"Seconds per 1000 iterations, {speed['iterations']} iterations each, one thread,"
            " one run after the other (`python benchmarks/anchors/speed.py`). The official"
            " figure is its whole `learn()` loop (with the per-epoch draws and saves the script"
            " does, plots off); the project's is its training loop's own clock. The hours"
            " extrapolate both to the shipped config's full length (the diffusion and the BNN"
            " are timed, not scored).",
            "",
            "| repository | config | target | label | official | this project | ratio "
            "| full length | official h | project h |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in speed["results"]:
            ratio = r["official_seconds_per_1000"] / r["project_seconds_per_1000"]
            lines.append(
                f"| {r['repo']} | {r['config']} | {r['target']} | {r['label']} "
                f"| {r['official_seconds_per_1000']:.2f} | {r['project_seconds_per_1000']:.2f} "
                f"| {ratio:.2f} | {r['official_iterations']} "
                f"| {r['official_hours_at_full_length']:.2f} "
                f"| {r['project_hours_at_full_length']:.2f} |"
            )
        lines.append("")
    lines += [
        "## Official codes and configurations not run here",
        "",
        *(f"- **{name}**: {reason}" for name, reason in NOT_RUNNABLE.items()),
        "",
    ]
    return "\n".join(lines)


def _run_key(row: dict[str, object]) -> tuple[str, ...]:
    return tuple(str(row[column]) for column in COLUMNS[:6])


def merged(kept: list[dict[str, object]], new: list[dict[str, object]]) -> list[dict[str, object]]:
    """``new`` plus the rows of ``kept`` whose run (repo … seed) ``new`` does not hold."""
    replaced = {_run_key(row) for row in new}
    return [row for row in kept if _run_key(row) not in replaced] + new


def read_csv(path: Path) -> list[dict[str, object]]:
    """The rows of an anchors CSV (none when the file does not exist)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


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
    paths = sorted(args.runs.rglob("seed*/metrics.zarr"))
    rows = merged(read_csv(args.out), [row for path in paths for row in rows_of(path)])
    write_csv(rows, args.out)
    speed_path = args.out.with_name("anchors_speed.json")
    speed = json.loads(speed_path.read_text("utf-8")) if speed_path.exists() else None
    args.out.with_suffix(".md").write_text(markdown(rows, speed), "utf-8")
    runs = len({_run_key(row) for row in rows})
    print(f"wrote {args.out} and {args.out.with_suffix('.md').name}: {runs} runs, {len(paths)} new")


if __name__ == "__main__":
    main()
