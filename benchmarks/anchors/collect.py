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

The BNN scripts, scored on their own split (``seed*/scores.json``, :mod:`official_split`),
give the rows :data:`SPLIT_METRICS` and a table of their own.
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


#: The rows of a BNN run scored on its official split (``scores.json``): the project's test
#: RMSE and log-likelihood (σ = 1/√γ, as the project's UCI targets have it), the official
#: ``rmse_llk`` of the same draws
#: (σ = 1/√γ on the original scale) and what the script printed at its last epoch (its own
#: ``sampling.num`` draws).
SPLIT_METRICS = (
    "rmse",
    "test_log_likelihood",
    "official_rmse",
    "official_test_log_likelihood",
    "official_printed_rmse",
    "official_printed_test_log_likelihood",
    "scored_draws",
    "iterations",
    "seconds_per_1000_iterations",
)


def rows_of_scores(scores_path: Path) -> Iterator[dict[str, object]]:
    """The CSV rows of one BNN run scored on its official split (:data:`SPLIT_METRICS`)."""
    document = json.loads(scores_path.read_text("utf-8"))
    wall, iterations = float(document["wall_seconds"]), int(document["iterations"])
    common = {column: document[column] for column in COLUMNS[:6]}
    common |= {"wall_seconds": f"{wall:.6g}", "threads": int(document["threads"])}
    scores, printed = document["scores"], document.get("printed") or {}
    values = {name: scores.get(name) for name in SPLIT_METRICS}
    values |= {f"official_printed_{name}": value for name, value in printed.items()}
    values |= {"iterations": iterations, "seconds_per_1000_iterations": 1000 * wall / iterations}
    for metric in SPLIT_METRICS:
        if values.get(metric) is not None:
            yield common | {"metric": metric, "value": f"{float(values[metric]):.6g}"}


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


def _mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}g} (n=1)"
    mean, sd = statistics.mean(values), statistics.stdev(values)
    return f"{mean:.{digits}g} ± {sd:.2g} (n={len(values)})"


def markdown(rows: list[dict[str, object]], speed: dict | None) -> str:
    """anchors.md: per official configuration, the mean ± sd over seeds of each summary
    metric; then the speed table and the codes that cannot run here."""
    groups: dict[tuple, dict[str, list[float]]] = {}
    for row in rows:
        key = (row["repo"], str(row["commit"])[:7], row["script"], row["config"], row["target"])
        groups.setdefault(key, {}).setdefault(str(row["metric"]), []).append(float(row["value"]))
    split_groups = {key: m for key, m in groups.items() if "official_rmse" in m}
    groups = {key: m for key, m in groups.items() if key not in split_groups}
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
        *_split_section(split_groups),
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
            " extrapolate both to the shipped config's full length (the diffusion is timed,"
            " not scored; the Boston BNN is timed against the project's `bnn_diabetes` of the"
            " same network size, and scored on its own split above).",
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


def _split_section(groups: dict[tuple, dict[str, list[float]]]) -> list[str]:
    """anchors.md's table of the BNN runs scored on their official split (none: no lines)."""
    if not groups:
        return []
    names = (
        ("rmse", "RMSE"),
        ("test_log_likelihood", "test LL (σ = sd/√γ)"),
        ("official_rmse", "official RMSE"),
        ("official_test_log_likelihood", "official test LL (σ = 1/√γ)"),
        ("official_printed_rmse", "printed RMSE"),
        ("official_printed_test_log_likelihood", "printed test LL"),
    )
    lines = [
        "",
        "### BNN regression on the official split",
        "",
        "The BNN scripts have no project reference: each run's draws (the trained generator's"
        " `scored_draws`, 1000) are scored on the script's own split of the UCI table, rebuilt"
        " by `benchmarks/anchors/official_split.py`: scikit-learn's"
        " `train_test_split(test_size=1 - 0.9, random_state=42)`, 455 / 51 rows for Boston,"
        " of which the last 46 training rows are the scripts' dev set, so 409 rows train the"
        " network; features and response standardised on those 409 (sd with ddof 1). One"
        " split, not the protocol's: the project's `bnn_boston` figures are over the"
        " protocol's 20 random splits (`default_rng(k)`, k = 0…19, standardised on all 455"
        " training rows, ddof 0), so the two agree only in distribution.",
        "",
        "RMSE and test LL are the project's (`BnnRegression.predictive`'s formulas: ŷ = ȳ +"
        " sd·f_θ(x), test LL the log of the mean over draws of N(y*; ŷ, σ²), averaged over"
        " test rows) with σ = 1/√γ in the response's units (γ the script's own: log γ ="
        " −2.556 in KSIVI, −2.552 in SIVI-SM), the convention of the official `rmse_llk`, which"
        " the project's UCI targets follow (`UciBnn.predictive_noise_sd`); the official"
        " columns are `rmse_llk`'s own figures on the same draws, which the runner reproduces"
        " from the draws to ≤ 1e-4 relative before it writes anything (same data, split,"
        " standardisation and θ layout). Printed: what the script itself printed at its last"
        " epoch, on its own 100 draws (`sampling.num`).",
        "",
        "| repository | commit | script | config | target | seeds | iterations | s / 1000 it | "
        + " | ".join(label for _, label in names)
        + " |",
        "|" + "---|" * (8 + len(names)),
    ]
    for (repo, commit, script, config, target), metrics in sorted(groups.items()):
        seconds = metrics["seconds_per_1000_iterations"]
        iterations = sorted({int(v) for v in metrics.get("iterations", [])})
        cells = [_mean_sd(metrics[name], 4) if name in metrics else "—" for name, _ in names]
        lines.append(
            f"| {repo} | {commit} | {script} | {config} | {target} | {len(seconds)} "
            f"| {', '.join(map(str, iterations))} | {statistics.median(seconds):.1f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


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
    split_paths = sorted(args.runs.rglob("seed*/scores.json"))
    new = [row for path in paths for row in rows_of(path)]
    new += [row for path in split_paths for row in rows_of_scores(path)]
    rows = merged(read_csv(args.out), new)
    write_csv(rows, args.out)
    speed_path = args.out.with_name("anchors_speed.json")
    speed = json.loads(speed_path.read_text("utf-8")) if speed_path.exists() else None
    args.out.with_suffix(".md").write_text(markdown(rows, speed), "utf-8")
    runs = len({_run_key(row) for row in rows})
    new_runs = len(paths) + len(split_paths)
    print(f"wrote {args.out} and {args.out.with_suffix('.md').name}: {runs} runs, {new_runs} new")


if __name__ == "__main__":
    main()
