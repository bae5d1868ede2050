"""Cost of the reference posteriors of the data targets: Stan compile and sampling time, SGLD time.

Each reference is built by the workflow's own `reference` rule (`snakemake` on
`config/paper.yaml`, asking for `results/reference/<target>.zarr` in a scratch directory), so
it runs with exactly the settings a user gets; compile and sampling seconds and the gate
figures are read back from the stored ReferenceDraws, wall time and peak memory from the rule's
benchmark file. A Stan reference is built twice: against an empty compile cache
(``$SIVI_STAN_CACHE`` in a fresh directory: what a first run pays once per program), then
against the filled cache (what every later job pays).

    python benchmarks/references.py [--targets blr_waveform,diffusion] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "paper.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
#: Diagnostics copied into the results file.
KEPT = (
    "engine",
    "compile_seconds",
    "sampling_seconds",
    "max_rhat",
    "min_bulk_ess",
    "min_tail_ess",
    "divergences",
    "min_ebfmi",
    "draws_per_chain",
)


def build_reference(target: str, cache: Path) -> dict:
    """Run the workflow's reference rule for ``target`` in a scratch directory."""
    from sivi_engine import artifacts

    with tempfile.TemporaryDirectory() as work:
        output = f"results/reference/{target}.zarr"
        proc = subprocess.run(
            [
                SNAKEMAKE,
                "-s",
                str(ROOT / "Snakefile"),
                "-d",
                work,
                "--configfile",
                str(CONFIG),
                "--cores",
                "2",
                output,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SIVI_STAN_CACHE": str(cache)},
        )
        if proc.returncode != 0:
            log = Path(work, "logs", "reference", f"{target}.log")
            tail = log.read_text().strip().splitlines()[-1] if log.is_file() else proc.stderr[-500:]
            return {"error": tail}
        with open(Path(work, "results", "benchmarks", "reference", f"{target}.tsv")) as tsv:
            benchmark = next(csv.DictReader(tsv, delimiter="\t"))
        diagnostics = json.loads(
            artifacts.read(Path(work, output), artifacts.REFERENCE_DRAWS).attrs["diagnostics"]
        )
    return {
        "wall_seconds": round(float(benchmark["s"]), 1),
        "max_rss_mb": round(float(benchmark["max_rss"]), 0),
        **{key: diagnostics[key] for key in KEPT if key in diagnostics},
        "gate_passed": diagnostics.get("gate", {}).get("passed"),
    }


def main() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    engines = {
        target: {**config["reference"], **spec.get("reference", {})}["engine"]
        for target, spec in config["targets"].items()
    }
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets", default=",".join(t for t, e in engines.items() if e != "exact")
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "references.json"
    )
    args = parser.parse_args()

    rows = []
    for target in args.targets.split(","):
        with tempfile.TemporaryDirectory() as cache:
            runs = {"empty_cache": build_reference(target, Path(cache))}
            if engines[target] == "stan":
                runs["filled_cache"] = build_reference(target, Path(cache))
        rows.append({"target": target, "engine": engines[target], **runs})
        print(json.dumps(rows[-1]), flush=True)
        write_results(args.out, rows)


def write_results(path: Path, rows: list[dict]) -> None:
    """The results file, rewritten after every reference so an interrupted run keeps its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "benchmark": (
                    "reference posteriors of config/paper.yaml: compile, sampling and wall seconds"
                ),
                "machine": {
                    "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(),
                },
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
