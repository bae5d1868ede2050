"""A measured run of the UCI BNN suite: config/uci.yaml cut to some data sets, methods and
splits, every run under one training budget, through the real workflow in its own folder.

    python benchmarks/uci_suite.py [--work /tmp/uci_suite] [--data-dir ../shared/data/uci]
        [--datasets yacht,boston,concrete,energy] [--methods ksivi,sivi_sm,svgd,gvi_fr]
        [--splits 20] [--budget 10] [--cores 2] [--out benchmarks/results/uci_suite]
        [-- SNAKEMAKE_ARGS...]

Snakemake runs in ``--work`` (rerunning the script resumes there; a larger ``--splits`` adds
splits to the finished ones; arguments after ``--`` go to Snakemake, e.g. ``--rerun-triggers
mtime input --forcerun evaluate`` to rescore stored draws after a change to the scores alone).
Written beside ``--out``: ``.md``, the report's table per data
set (test RMSE and test log-likelihood, mean ± standard error over splits, with the reference
draws' own row) under a header with the settings, wall time and machine; ``.csv``, every run's
held-out scores and the reference's, one row per (target label, method, seed).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: Scores kept in the CSV: q's held-out scores and the reference draws'.
SCORES = ("rmse", "test_log_likelihood", "reference_rmse", "reference_test_log_likelihood")


def suite_config(
    datasets: list[str], methods: list[str], splits: int, budget: float, data_dir: Path
) -> dict:
    """config/uci.yaml with only ``datasets`` (its target keys), ``methods`` (labels), the
    first ``splits`` splits of each, ``data_dir`` absolute and every run's budget set."""
    config = yaml.safe_load((ROOT / "config" / "uci.yaml").read_text("utf-8"))
    unknown = sorted(set(datasets) - set(config["targets"]) | set(methods) - set(config["methods"]))
    if unknown:
        raise SystemExit(f"not in config/uci.yaml: {unknown}")
    targets = {}
    for key in datasets:
        entry = dict(config["targets"][key])
        entry["settings"] = dict(entry.get("settings", {}), data_dir=str(data_dir.resolve()))
        entry["sweep"] = {"split": entry["sweep"]["split"][:splits]}
        targets[key] = entry
    config["targets"] = targets
    config["methods"] = {label: config["methods"][label] for label in methods}
    config["method_settings"] = dict(config["method_settings"], budget_seconds=budget)
    return config


def split_section(summary: str) -> str:
    """The report's "Held-out scores over splits" section, its tables and note."""
    found = re.search(r"## Held-out scores over splits\n(.*?)(?=\n## )", summary, re.DOTALL)
    if found is None:
        raise SystemExit("the report has no section of scores over splits")
    return found[1].strip()


def scores_frame(metrics_csv: Path) -> pd.DataFrame:
    """The report's CSV (one row per run) cut to the run, its status and :data:`SCORES`."""
    frame = pd.read_csv(metrics_csv)
    keep = ["target", "method", "seed", "diverged", *SCORES]
    return frame[[c for c in keep if c in frame.columns]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/uci_suite"))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "uci")
    parser.add_argument("--datasets", default="yacht,boston,concrete,energy")
    parser.add_argument("--methods", default="ksivi,sivi_sm,svgd,gvi_fr")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--budget", type=float, default=10.0, help="training seconds per run")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/uci_suite")
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: Snakemake's")
    args = parser.parse_args()

    config = suite_config(
        args.datasets.split(","), args.methods.split(","), args.splits, args.budget, args.data_dir
    )
    args.work.mkdir(parents=True, exist_ok=True)
    config_path = args.work / "uci_suite.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake = Path(sys.executable).with_name("snakemake")
    start = time.perf_counter()
    subprocess.run(
        [
            str(snakemake),
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(args.work),
            "--configfile",
            str(config_path),
            "--cores",
            str(args.cores),
            "--keep-going",
            *(a for a in args.snakemake_args if a != "--"),
        ],
        check=True,
    )
    wall = time.perf_counter() - start

    section = split_section((args.work / "reports" / "summary.md").read_text("utf-8"))
    scores = scores_frame(args.work / "results" / "metrics.csv")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(args.out.with_suffix(".csv"), index=False)
    header = (
        "# UCI BNN suite: a measured run\n\n"
        f"`python benchmarks/uci_suite.py --datasets {args.datasets} --methods {args.methods} "
        f"--splits {args.splits} --budget {args.budget:g} --cores {args.cores}`: "
        f"config/uci.yaml cut to these, one seed per split, every run stopped after "
        f"{args.budget:g} s of training (the papers' 20 000 iterations are far beyond it: read "
        "these as scores at a budget, not at convergence). Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; workflow wall "
        f"time of this invocation {wall / 60:.1f} min (a resumed run counts only its own). "
        f"Every run's scores: {args.out.with_suffix('.csv').name}.\n\n"
    )
    args.out.with_suffix(".md").write_text(header + section + "\n", "utf-8")


if __name__ == "__main__":
    main()
