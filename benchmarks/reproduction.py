"""Run the affordable rows of the paper config's reproduction table and write the measured table.

    python benchmarks/reproduction.py [--cores 2] [--seeds 0 1 2] [--rows all|affordable]

Snakemake builds the runs of each selected (target, label) of ``config/paper.yaml`` at its full
paper settings with the given seeds, then the report's reproduction section is rendered from
exactly those runs into ``benchmarks/results/reproduction.md``, with every run's metrics in
``reproduction.csv`` beside it (the rest of that report goes to a scratch directory).
``AFFORDABLE`` lists the rows that fit a 2-core CPU machine in about an hour; the others are
listed in the file as not run, with the reason.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config/paper.yaml"
RESULTS = ROOT / "benchmarks/results/reproduction.md"

#: (target, label) pairs run here, with their cost on one core of this machine (measured).
AFFORDABLE = {
    ("banana", "ksivi_v"): "50k iterations, ~4 s per 1000",
    ("multimodal", "ksivi_v"): "50k iterations, ~4 s per 1000",
    ("x_shaped", "ksivi_v"): "50k iterations, ~4 s per 1000",
    ("student_t2d", "ksivi_v"): "50k iterations, ~5 s per 1000",
    ("blr_waveform", "ksivi_v"): "20k iterations, ~4.4 ms each",
    ("blr_waveform", "sivi_sm"): "20k iterations",
    ("multimodal", "sivi_sm"): "50k iterations, ~3.6 s per 1000",
    ("x_shaped", "sivi"): "5k iterations",
}
#: Why the other rows are not run on this machine.
NOT_RUN = {
    ("diffusion", "ksivi_v"): "100k iterations of a 100-D family at batch 128: hours on this CPU",
    ("banana", "uivi"): "50k iterations with 10 HMC transitions per step: ~25 min per seed here",
}


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", choices=["affordable", "all"], default="affordable")
    args = parser.parse_args(argv)

    config = yaml.safe_load(CONFIG.read_text("utf-8"))
    pairs = sorted({(row["target"], row["method"]) for row in config["reproduction"]})
    chosen = [pair for pair in pairs if args.rows == "all" or pair in AFFORDABLE]
    metrics = [
        f"results/runs/{t}/{label}/seed{s}/metrics.zarr" for t, label in chosen for s in args.seeds
    ]
    samples = [path.replace("metrics.zarr", "samples.zarr") for path in metrics]
    targets = sorted({t for t, _ in chosen})
    references = [f"results/reference/{t}.zarr" for t in targets]
    descriptions = [f"results/targets/{t}.zarr" for t in targets]
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    with tempfile.TemporaryDirectory() as scratch:
        # a second --configfile merges over the first (`--config seeds=[...]` gives strings)
        seeds = Path(scratch) / "seeds.yaml"
        seeds.write_text(yaml.safe_dump({"seeds": args.seeds}), "utf-8")
        run(
            [
                snakemake,
                "--cores",
                str(args.cores),
                "--configfile",
                str(CONFIG),
                str(seeds),
                "--",
                "results/config.yaml",
                *metrics,
                *descriptions,
            ]
        )
        run(
            [
                sys.executable,
                "-m",
                "sivi_engine",
                "report",
                "--metrics",
                *metrics,
                "--samples",
                *samples,
                "--references",
                *references,
                "--descriptions",
                *descriptions,
                "--config",
                "results/config.yaml",
                "--out",
                scratch,
                "--table",
                str(Path(scratch) / "metrics.zarr"),
            ]
        )
        table = (Path(scratch) / "reproduction.md").read_text("utf-8")
        shutil.copy(Path(scratch) / "metrics.csv", RESULTS.with_suffix(".csv"))
    skipped = [pair for pair in pairs if pair not in chosen]
    lines = [
        "# Reproduction table (measured)",
        "",
        f"`python benchmarks/reproduction.py --cores {args.cores} "
        f"--seeds {' '.join(map(str, args.seeds))}`"
        f" on {datetime.date.today().isoformat()}: config/paper.yaml at full paper settings,"
        f" {len(args.seeds)} seeds, CPU.",
        "",
        table.strip(),
        "",
        "## Rows not run here",
        "",
        *(f"- {t} / {label}: {NOT_RUN.get((t, label), 'not selected')}" for t, label in skipped),
        "",
    ]
    RESULTS.write_text("\n".join(lines), "utf-8")
    print(f"wrote {RESULTS} and {RESULTS.with_suffix('.csv').name} (every run's metrics)")


if __name__ == "__main__":
    main()
