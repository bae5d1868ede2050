"""A measured run of some of config/paper.yaml's experiments through the real workflow, in its
own folder: the chosen targets with the labels of their experiments, every run at the paper's
settings (or under one training budget), and the report's sections of those targets kept.

    python benchmarks/seed_experiments.py --targets student_t1d,gmm1d,banana_sivi
        [--seeds 2] [--budget SECONDS] [--cores 2] [--work /tmp/seed_experiments]
        [--out benchmarks/results/seed_experiments] [-- SNAKEMAKE_ARGS...]

The labels run on a target are its `method_labels` and every label whose own `targets` list
names it (the experiment's labels: DSIVI's sequential labels on gmm1d, not the whole grid).
Snakemake runs in ``--work`` (rerunning resumes there; arguments after ``--`` go to it, e.g.
``--rerun-triggers mtime`` to keep runs trained before an unrelated code change). Written:
``OUT.md``, a header with the settings, wall time and machine, then each target's section of
the report (its tables and figure captions) and the reproduction rows of those targets;
``OUT.csv``, every run's scalar metrics.
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


def experiment_labels(config: dict, target: str) -> list[str]:
    """The method labels of ``target``'s experiment: its ``method_labels``, and the labels
    whose own ``targets`` list names it."""
    chosen = set(config["targets"][target].get("method_labels") or ())
    chosen |= {
        label for label, spec in config["methods"].items() if target in spec.get("targets", ())
    }
    return [label for label in config["methods"] if label in chosen]


def cut_config(targets: list[str], seeds: int, budget: float | None) -> dict:
    """config/paper.yaml with only ``targets``, each restricted to its experiment's labels, the
    first ``seeds`` seeds, the reproduction rows of those targets (no official-code anchors:
    no seed paper of these experiments has public code run here) and, with ``budget``, every
    run's training budget."""
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text("utf-8"))
    unknown = sorted(set(targets) - set(config["targets"]))
    if unknown:
        raise SystemExit(f"not in config/paper.yaml: {unknown}")
    per_target = {target: experiment_labels(config, target) for target in targets}
    kept = {label for labels in per_target.values() for label in labels}
    config["targets"] = {
        target: dict(config["targets"][target] or {}, method_labels=per_target[target])
        for target in targets
    }
    config["methods"] = {
        label: dict(spec, targets=[t for t in targets if label in per_target[t]])
        for label, spec in config["methods"].items()
        if label in kept
    }
    config["seeds"] = config["seeds"][:seeds]
    config["reproduction"] = [
        row
        for row in config.get("reproduction", [])
        if row["target"] in targets and row["method"] in kept
    ]
    config.pop("anchors", None)  # a path inside the project; these experiments have no anchors
    if budget is not None:
        config["method_settings"] = dict(config.get("method_settings", {}), budget_seconds=budget)
    return config


def target_section(summary: str, target: str) -> str:
    """The report's "### target" section under "Results per target", its folded table left
    out (every metric is in the CSV)."""
    found = re.search(rf"\n### {re.escape(target)}\n(.*?)(?=\n### |\n## )", summary, re.DOTALL)
    if not found:
        return f"(no section for {target} in the report)\n"
    text = re.sub(r"<details>.*?</details>\n", "", found[1], flags=re.DOTALL)
    return re.sub(r"!\[(.*?)\]\((.*?)\)", r"Figure (the report's \2): \1", text)


def reproduction_section(summary: str) -> str:
    found = re.search(r"\n## Reproduction\n(.*?)(?=\n## )", summary, re.DOTALL)
    return found[1] if found else ""


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    ours, snakemake_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", required=True)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/seed_experiments"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/seed_experiments")
    args = parser.parse_args(ours)
    targets = args.targets.split(",")
    config = cut_config(targets, args.seeds, args.budget)
    args.work.mkdir(parents=True, exist_ok=True)
    config_path = args.work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    start = time.perf_counter()
    command = [
        os.path.join(os.path.dirname(sys.executable), "snakemake"),
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(args.work),
        "--configfile", str(config_path),
        "--cores", str(args.cores),
        "--quiet",
        *snakemake_args,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    summary = (args.work / "reports" / "summary.md").read_text("utf-8")
    metrics = pd.read_csv(args.work / "results" / "metrics.csv")
    metrics[metrics["target"].isin(targets)].to_csv(args.out.with_suffix(".csv"), index=False)
    labels = {t: config["targets"][t]["method_labels"] for t in targets}
    budget = "" if args.budget is None else f" --budget {args.budget:g}"
    how = "the paper's settings" if args.budget is None else f"a {args.budget:g} s budget"
    header = [
        "# Seed experiments measured through the workflow",
        "",
        f"`python benchmarks/seed_experiments.py --targets {args.targets} --seeds {args.seeds}"
        f"{budget}`: config/paper.yaml cut to these targets and their experiments' labels at "
        f"{how}; seeds {config['seeds']}. Workflow wall time {wall / 60:.1f} min (jobs already "
        f"in {args.work} are not rerun) on {platform.machine()}, {os.cpu_count()} cores.",
        "",
        *(f"- `{t}`: {', '.join(labels[t])}" for t in targets),
        "",
    ]
    body = [f"## {t}\n{target_section(summary, t)}" for t in targets]
    reproduced = reproduction_section(summary)
    rows = f"\n## Reproduction rows\n{reproduced}" if reproduced else ""
    text = "\n".join(header + body) + rows
    args.out.with_suffix(".md").write_text(text, "utf-8")
    print(f"wrote {args.out.with_suffix('.md')} and .csv ({wall / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
