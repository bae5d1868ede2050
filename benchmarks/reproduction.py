"""Run rows of the paper config's reproduction table and write the measured table.

    python benchmarks/reproduction.py [--cores 2] [--seeds 0 1 2] [--rows affordable|all|none]
        [--only TARGET/LABEL ...] [--waveform SPLIT.npz]

Snakemake builds the runs of each selected (target, label) of ``config/paper.yaml`` at its full
paper settings with the given seeds (``--waveform`` points ``blr_waveform`` at a real split
file, as the anchors use); their final metrics replace the same (target, label, seed) rows of
``benchmarks/results/reproduction.csv``, which keeps every earlier run. The table
``benchmarks/results/reproduction.md`` is then rendered from that CSV, the committed anchors
file (``benchmarks/results/anchors.csv``: the official codes run here, see
``benchmarks/anchors/``) and the config's rows, by the report's own
:func:`~sivi_engine.report.reproduction.reproduction_table`. ``--rows none`` only renders.
``AFFORDABLE`` lists the rows that fit a 2-core CPU machine; the others are listed in the file
as not run, with the reason.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config/paper.yaml"
RESULTS = ROOT / "benchmarks/results/reproduction.md"
RUNS_CSV = RESULTS.with_suffix(".csv")
ANCHORS = ROOT / "benchmarks/results/anchors.csv"

#: (target, label) pairs run here, with their cost on one core of this machine (measured).
AFFORDABLE = {
    ("banana", "ksivi_v"): "50k iterations, ~4 s per 1000",
    ("banana", "ksivi_u"): "50k iterations, ~5 s per 1000",
    ("multimodal", "ksivi_v"): "50k iterations, ~4 s per 1000",
    ("x_shaped", "ksivi_v"): "50k iterations, ~4 s per 1000",
    ("student_t2d", "ksivi_v"): "50k iterations, ~5 s per 1000",
    ("blr_waveform", "ksivi_v"): "20k iterations, ~4.4 ms each",
    ("blr_waveform", "sivi_sm"): "20k iterations",
    ("multimodal", "sivi_sm"): "50k iterations, ~3.6 s per 1000",
    ("banana", "sivi_sm"): "50k iterations, ~2.7 s per 1000",
    ("x_shaped", "sivi_sm"): "50k iterations, ~2.8 s per 1000",
    ("x_shaped", "sivi"): "5k iterations",
    ("blr_waveform", "sivi"): "5k iterations",
}
#: Why the other rows are not run on this machine.
NOT_RUN = {
    ("diffusion", "ksivi_v"): (
        "100k iterations, 2.8 s per 1000 on an idle core (~5 min per seed; the official code "
        "14.8 s, ~25 min): not run in this session, see benchmarks/results/anchors.md"
    ),
    ("banana", "uivi"): "50k iterations with 10 HMC transitions per step: ~25 min per seed here",
}


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def run_pairs(
    pairs: list[tuple[str, str]], seeds: list[int], cores: int, waveform: Path | None
) -> pd.DataFrame:
    """Build the pairs' runs with Snakemake; their final metrics, one row per run."""
    metrics = [f"results/runs/{t}/{lb}/seed{s}/metrics.zarr" for t, lb in pairs for s in seeds]
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    overlay: dict = {"seeds": seeds}
    if waveform is not None:
        overlay["targets"] = {"blr_waveform": {"settings": {"data_file": str(waveform.resolve())}}}
    with tempfile.TemporaryDirectory() as scratch:
        # a second --configfile merges over the first (`--config seeds=[...]` gives strings)
        extra = Path(scratch) / "overlay.yaml"
        extra.write_text(yaml.safe_dump(overlay), "utf-8")
        configs = ["--configfile", str(CONFIG), str(extra)]
        run([snakemake, "--cores", str(cores), *configs, "--", *metrics])
    from sivi_engine import artifacts
    from sivi_engine.report import tables

    sets = [artifacts.read(ROOT / path, artifacts.METRIC_SET) for path in metrics]
    return tables.tidy_frame(artifacts.combine_metric_sets(sets))


def merge_runs(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` with the rows of the runs in ``new`` replaced by ``new``'s (keyed by target,
    method, seed), sorted by that key."""
    key = ["target", "method", "seed"]
    kept = old.merge(new[key], on=key, how="left", indicator=True)
    kept = old[(kept["_merge"] == "left_only").to_numpy()]
    return pd.concat([kept, new], ignore_index=True).sort_values(key, ignore_index=True)


def render(runs: pd.DataFrame, config: dict, anchors: Path) -> str:
    """The reproduction table of ``config``'s rows from the per-run metrics ``runs`` and the
    anchors file, as Markdown."""
    from sivi_engine.report import reproduction
    from sivi_engine.report.document import reproduction_blocks
    from sivi_engine.report.render import to_markdown

    combined = runs.set_index(["target", "method", "seed"]).to_xarray()
    lines = reproduction.read_anchors(anchors) if anchors.exists() else []
    table = reproduction.reproduction_table(reproduction.parse_rows(config), combined, lines)
    return to_markdown(reproduction_blocks(table))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", choices=["affordable", "all", "none"], default="affordable")
    parser.add_argument("--only", nargs="*", default=[], metavar="TARGET/LABEL")
    parser.add_argument("--waveform", type=Path, default=None, help="waveform split (.npz)")
    args = parser.parse_args(argv)

    config = yaml.safe_load(CONFIG.read_text("utf-8"))
    pairs = sorted({(row["target"], row["method"]) for row in config["reproduction"]})
    chosen = [
        pair
        for pair in pairs
        if args.rows == "all" or (args.rows == "affordable" and pair in AFFORDABLE)
    ]
    if args.only:
        chosen = [pair for pair in chosen if "/".join(pair) in args.only]
    runs = pd.read_csv(RUNS_CSV) if RUNS_CSV.exists() else pd.DataFrame()
    if chosen:
        new = run_pairs(chosen, args.seeds, args.cores, args.waveform)
        runs = merge_runs(runs, new) if len(runs) else new
        runs.to_csv(RUNS_CSV, index=False)
    ran = set(zip(runs["target"], runs["method"], strict=True))
    skipped = [pair for pair in pairs if pair not in ran]
    lines = [
        "# Reproduction table (measured)",
        "",
        f"`python benchmarks/reproduction.py` (last run {datetime.date.today().isoformat()}):"
        " config/paper.yaml at full paper settings, 3 seeds, CPU, one thread per run; every"
        f" run's final metrics are in `{RUNS_CSV.name}`, the official codes' in"
        f" `{ANCHORS.name}` (see `anchors.md`).",
        "",
        render(runs, config, ANCHORS).strip(),
        "",
        "## Rows not run here",
        "",
        *(f"- {t} / {label}: {NOT_RUN.get((t, label), 'not selected')}" for t, label in skipped),
        "",
    ]
    RESULTS.write_text("\n".join(lines), "utf-8")
    print(f"wrote {RESULTS} and {RUNS_CSV.name}")


if __name__ == "__main__":
    main()
