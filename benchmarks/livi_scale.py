"""LIVI's training cost against the dimension d: seconds per iteration and peak memory of
``log_det: exact`` (the d × m Jacobian per draw) and ``low_rank`` (J V, d × r, by subspace
iteration of Jacobian-vector products), on a standard Gaussian on R^d.

Each (d, log_det) runs ``LIVI.fit`` in its own process (its peak resident memory is the
process's), on one thread: generator z_dim m = 100 → 50 → 50 → d, σ = 1e-3, a batch of 4
draws, rank r = 10 with 5 subspace iterations. The seconds per iteration are the training
loop's clock (``Trace.elapsed``, trace every step) after the first iteration, over the rest.
Sizes whose exact Jacobian would exceed ``--max-jacobian-gib`` are skipped with the reason.

    python benchmarks/livi_scale.py [--dims 1000,10000,100000,1000000] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Z_DIM, HIDDEN, BATCH, RANK, SUBSPACE_ITERATIONS = 100, (50, 50), 4, 10, 5
#: Training iterations timed per size (the first is excluded as warm-up).
ITERATIONS = {1_000: 60, 10_000: 30, 100_000: 10, 1_000_000: 5}


def worker(dim: int, log_det: str, iterations: int) -> dict[str, float]:
    """One timed ``LIVI.fit`` on N(0, I_dim); its seconds per iteration and peak RSS."""
    import resource

    import torch

    from sivi_engine.methods.livi import LIVI, LIVISettings
    from sivi_engine.settings import resolve
    from sivi_engine.targets.base import Target

    class StandardGaussian(Target):
        name = "standard_gaussian"

        @property
        def dim(self) -> int:
            return dim

        def log_prob(self, x: torch.Tensor) -> torch.Tensor:
            return -0.5 * (x**2).sum(-1)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    settings = resolve(
        LIVISettings,
        {
            "z_dim": Z_DIM,
            "hidden": HIDDEN,
            "batch_size": BATCH,
            "log_det": log_det,
            "rank": RANK,
            "subspace_iterations": SUBSPACE_ITERATIONS,
            "iterations": iterations,
            "trace_every": 1,
            "num_draws": 1,
            "checkpoints": (iterations,),
        },
    )
    result = LIVI().fit(StandardGaussian(), settings, torch.device("cpu"))
    elapsed = result.trace.elapsed
    return {
        "seconds_per_iteration": float((elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "finite_loss": bool(all(abs(v) < float("inf") for v in result.trace.loss)),
    }


def jacobian_gib(dim: int) -> float:
    """The exact path's batch of Jacobians in float32, GiB (float64 copies come on top)."""
    return BATCH * dim * Z_DIM * 4 / 2**30


def measure(dim: int, log_det: str, max_jacobian_gib: float) -> dict[str, object]:
    row: dict[str, object] = {"dim": dim, "log_det": log_det}
    if log_det == "exact" and jacobian_gib(dim) > max_jacobian_gib:
        gib = jacobian_gib(dim)
        row["skipped"] = (
            f"the batch's Jacobians alone are {gib:.1f} GiB in float32 ({BATCH} × {dim} × "
            f"{Z_DIM}), and the Gram matrix is formed from a float64 copy: over the "
            f"{max_jacobian_gib} GiB allowed on this 23 GiB machine shared with other jobs"
        )
        return row
    iterations = ITERATIONS.get(dim, 5)
    command = [sys.executable, __file__, "--worker", f"{dim},{log_det},{iterations}"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    return row | {"iterations": iterations} | json.loads(proc.stdout.splitlines()[-1])


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "# LIVI: seconds per training iteration against d",
        "",
        "`python benchmarks/livi_scale.py`: LIVI on a standard Gaussian on R^d, generator "
        f"{Z_DIM} → {HIDDEN[0]} → {HIDDEN[1]} → d, batch {BATCH}, one thread; `low_rank` with "
        f"r = {RANK} and {SUBSPACE_ITERATIONS} subspace iterations. Peak memory is the resident "
        "set of the process (torch included, ~0.3 GiB).",
        "",
        "| d | log_det | s / iteration | peak memory (GiB) |",
        "|---:|---|---:|---:|",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['dim']:,} | {row['log_det']} | not run¹ | |")
        else:
            lines.append(
                f"| {row['dim']:,} | {row['log_det']} | {row['seconds_per_iteration']:.4f} | "
                f"{row['peak_rss_gib']:.2f} |"
            )
    skipped = [row["skipped"] for row in rows if "skipped" in row]
    if skipped:
        lines += ["", f"¹ {skipped[0]}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="1000,10000,100000,1000000")
    parser.add_argument("--max-jacobian-gib", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/livi_scale.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        dim, log_det, iterations = args.worker.split(",")
        print(json.dumps(worker(int(dim), log_det, int(iterations))))
        return
    rows = []
    for dim in (int(d) for d in args.dims.split(",")):
        for log_det in ("exact", "low_rank"):
            rows.append(measure(dim, log_det, args.max_jacobian_gib))
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "benchmark": "LIVI seconds per training iteration and peak memory against d",
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 1 thread",
        "settings": {
            "z_dim": Z_DIM,
            "hidden": list(HIDDEN),
            "batch_size": BATCH,
            "rank": RANK,
            "subspace_iterations": SUBSPACE_ITERATIONS,
            "sigma": 1e-3,
            "target": "standard Gaussian on R^d",
        },
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    args.out.with_suffix(".md").write_text(markdown(rows), "utf-8")


if __name__ == "__main__":
    main()
