"""Cost of hierarchical KSIVI per iteration against KSIVI's, and where hksivi's time goes.

Both methods train on `banana` at their defaults (batch 500, V-statistic: 2 × 500 draws per
iteration) on one thread, timed by ``benchmarks/speed.py``'s worker (median over blocks of 100
iterations after a warm-up). The breakdown times, at the same shapes, the parts one hksivi
iteration runs T = 10 times — the KSD quadratic form (forward + backward), the target score
and the layer (clipped drift, residual MLP d→50→50→d, noise; forward + backward of both) —
and the Adam step over all layers, as medians of ``REPEATS`` calls; their sum is compared
with the measured iteration. The one-off step tuning at initialisation is timed too.

    python benchmarks/hksivi_cost.py [--iterations 1000] [--warmup 100] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import speed  # noqa: E402  (the shared timing worker)

#: Calls per timed part; the median damps a shared machine's noise.
REPEATS = 50
TARGET, BATCH = "banana", 500


def median_seconds(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def breakdown() -> dict[str, float]:
    """Seconds per hksivi iteration by part, at T layers and 2 × ``BATCH`` draws."""
    import torch

    from sivi_engine.kernels import quadratic_form
    from sivi_engine.methods.hksivi import HKSIVISettings, annealed_score, initial_model
    from sivi_engine.targets import make_target

    torch.set_num_threads(1)
    torch.manual_seed(0)
    target, settings = make_target(TARGET), HKSIVISettings()
    start = time.perf_counter()
    q = initial_model(target, settings, 2 * BATCH, torch.device("cpu"))
    tuning = time.perf_counter() - start
    layer, layers = q.layers[-1], len(q.layers)
    x = q.sample(2 * BATCH)

    def score() -> None:
        xg = x.clone().requires_grad_(True)
        target.score(xg).sum().backward()

    def layer_step() -> None:
        draw, conditional = layer(x, annealed_score(target.score(x), x, 1.0, settings.base_scale))
        (draw.sum() + conditional.sum()).backward()

    def ksd_form() -> None:
        xg, fg = x.clone().requires_grad_(True), target.score(x).requires_grad_(True)
        quadratic_form(
            xg[:BATCH], fg[:BATCH], xg[BATCH:], fg[BATCH:], settings.kernel, False
        ).backward()

    optimiser = torch.optim.Adam(q.parameters(), lr=settings.lr)
    for p in q.parameters():
        p.grad = torch.zeros_like(p)
    parts = {
        "ksd_form": layers * median_seconds(ksd_form),
        "target_score": layers * median_seconds(score),
        "layer_mlp_drift_noise": layers * median_seconds(layer_step),
        "adam_step": median_seconds(optimiser.step),
    }
    parts["sum_of_parts"] = sum(parts.values())
    return {"seconds_per_iteration": parts, "initial_step_tuning_seconds": tuning}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "hksivi_cost.json"
    )
    args = parser.parse_args()
    import torch

    per_1000 = {
        m: speed.run_worker(m, TARGET, 1, args.iterations, args.warmup) for m in ("ksivi", "hksivi")
    }
    parts = breakdown()
    iteration = per_1000["hksivi"] / 1000
    shares = {k: round(v / iteration, 3) for k, v in parts["seconds_per_iteration"].items()}
    result = {
        "benchmark": f"hksivi vs ksivi on {TARGET}, batch {BATCH}, 1 thread",
        "iterations_timed": args.iterations,
        "warmup": args.warmup,
        "seconds_per_1000_iterations": {k: round(v, 3) for k, v in per_1000.items()},
        "hksivi_over_ksivi": round(per_1000["hksivi"] / per_1000["ksivi"], 2),
        "hksivi_breakdown_seconds_per_iteration": {
            k: round(v, 5) for k, v in parts["seconds_per_iteration"].items()
        },
        "hksivi_breakdown_share_of_measured_iteration": shares,
        "initial_step_tuning_seconds": round(parts["initial_step_tuning_seconds"], 3),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
