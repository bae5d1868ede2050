"""The first run, as a newcomer makes it: README command 1 in a fresh clone, timed end to end,
with an empty Stan compile cache; then where the workflow's time went.

    python benchmarks/first_run.py [--repo .] [--work DIR] [--out benchmarks/results/first_run.json]

The clone is of ``--repo``'s HEAD (commit what you measure). The command is the README's first
set-up line, its ``&&``-joined steps run one after the other by ``bash -c`` in the clone and
timed one by one, with ``XDG_CACHE_HOME`` pointing at an empty folder: pystan's compiled models
and pip's cache live there, so packages are fetched and the Stan program compiled as on a new
machine.
Written: the seconds of each step and in all, and the split of the jobs' wall time from the
Snakemake benchmark files (``sivi_engine.report.costs.cost_split``): training loops against
everything beyond them, with the goal "evaluation plus per-job overhead ≤ 25 % of the training
loops" checked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

import xarray as xr

from sivi_engine.report.build import loop_seconds
from sivi_engine.report.costs import cost_split, read_benchmarks, run_overhead_seconds

ROOT = Path(__file__).resolve().parents[1]
#: Goal of issue 16: evaluation plus per-job overhead at most this share of the training loops.
OVERHEAD_GOAL = 0.25


def readme_command(readme: Path) -> str:
    """The first line of the README's first bash block: install and run the default config."""
    block = re.search(r"```bash\n(.*?)\n```", readme.read_text("utf-8"), flags=re.DOTALL)
    if block is None:
        raise SystemExit(f"{readme}: no ```bash block")
    return block[1].splitlines()[0]


def timed(command: str, cwd: Path, env: dict[str, str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{command!r} failed ({proc.returncode}); log: {log}")
    return seconds


def split_of(clone: Path) -> dict[str, object]:
    """The cost split of the clone's finished run, as rows and as the goal's ratio."""
    benchmarks = clone / "results/benchmarks"
    frame = read_benchmarks(sorted(benchmarks.rglob("*.tsv")), benchmarks)
    loops = loop_seconds(xr.open_zarr(clone / "results/metrics.zarr"))
    table = cost_split(frame, loops)
    overhead = run_overhead_seconds(frame, loops)
    return {
        "rows": [dict(zip(table.header, row)) for row in table.rows],
        "training_loop_seconds": round(loops, 1),
        "overhead_seconds": round(overhead, 1),
        "overhead_share": round(overhead / loops, 3),
        "goal": f"overhead_share <= {OVERHEAD_GOAL}",
        "goal_met": bool(overhead / loops <= OVERHEAD_GOAL),
        "jobs": int(len(frame)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--work", type=Path, help="where to clone (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/first_run.json")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="first_run_"))
    clone, cache = work / "clone", work / "xdg_cache"
    cache.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(clone)], check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.strip()
    command = readme_command(clone / "README.md")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = str(cache)
    steps = {
        step: round(timed(step, clone, env, work / f"step{i}.log"), 1)
        for i, step in enumerate(command.split(" && "))
    }
    total = sum(steps.values())
    result = {
        "benchmark": "README command 1 in a fresh clone, cold Stan cache",
        "commit": commit,
        "command": command,
        "machine": {"processor": platform.machine(), "cpus": os.cpu_count()},
        "step_seconds": steps,
        "total_seconds": round(total, 1),
        "total_minutes": round(total / 60, 2),
        "cost_split": split_of(clone),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
