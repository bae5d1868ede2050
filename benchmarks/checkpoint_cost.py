"""Seconds per training checkpoint at 10 000 draws (and at 1000, the default config's): storing
it (training side) and scoring it (evaluation side), on `banana` (2-D) and `blr_waveform` (22-D,
with the predictive group).

Evaluation: checkpoints of n draws scored by the curve groups
(:func:`sivi_engine.metrics.curves.score_checkpoints`): the first of a run, which also computes
what depends on the reference alone, and each further one (from scoring ``CHECKPOINTS`` at
once), medians of ``--repeats`` runs, and each group's share on a warm cache; and the
reference's noise floor at n draws (once per run, not per checkpoint), both scored against the
M − n reference draws not held out for the floor, as in the evaluation. M = max(10 000, 2n)
(the floor needs 2n; 10 000 is the default config's reference): banana exact draws,
blr_waveform draws of its Laplace approximation N(x̂, H⁻¹) at the posterior mode (the metrics'
cost does not depend on the reference's accuracy, and a Stan reference holds only 10 000
draws). The scored checkpoint
draws come from the same source with another seed. Training: KSIVI at its target defaults for
``--iterations`` iterations with the default 1-2-5 schedule and ``checkpoint_draws`` = n; the
trace's ``checkpoint_overhead_seconds`` per checkpoint and as a share of the loop's seconds.

    python benchmarks/checkpoint_cost.py [--targets banana,blr_waveform] [--draws 10000,1000]
                                         [--repeats 2] [--iterations 500] [--threads 1]
                                         [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from sivi_engine.metrics import METRICS, EvaluationContext, EvaluationSettings, evaluate_groups
from sivi_engine.metrics.curves import (
    CURVE_GROUPS,
    hold_out_floor_draws,
    noise_floor,
    score_checkpoints,
)
from sivi_engine.targets import make_target
from sivi_engine.targets.base import Target
from sivi_engine.targets.laplace import posterior_mode

#: Reference draws of the default config; more where the floor needs them (2n).
CONFIG_REFERENCE_DRAWS = 10_000
#: Checkpoints scored at once to measure the cost of each further one.
CHECKPOINTS = 6


def laplace_draws(target: Target, n: int, seed: int) -> np.ndarray:
    """n draws of N(x̂, H⁻¹), x̂ the posterior mode from 0 and H = −∇² log p(x̂)."""
    mode = posterior_mode(target, torch.zeros(target.dim, dtype=torch.float64))
    hessian = torch.autograd.functional.hessian(lambda x: -target.log_prob(x[None]).sum(), mode)
    covariance = torch.linalg.inv(hessian)
    normal = torch.distributions.MultivariateNormal(mode, covariance_matrix=covariance)
    torch.manual_seed(seed)
    return normal.sample((n,)).numpy()


def draws_of(target: Target, n: int, seed: int) -> tuple[np.ndarray, str]:
    """n draws standing for the reference (seed 0) or for a checkpoint (seed 1), and their
    source."""
    if target.has_exact_sampler:
        return target.sample(n, torch.Generator().manual_seed(seed)).numpy(), "exact"
    return laplace_draws(target, n, seed), "laplace"


def evaluation_cost(target: Target, n: int, repeats: int) -> dict:
    """Seconds to score checkpoints of n draws on the curve groups: the first of a run (which
    also computes what depends on the reference alone) and each further one (the marginal cost,
    from scoring ``CHECKPOINTS`` checkpoints), per metric group, and the floor's; all against
    the reference draws left by the floor's hold-out, as the evaluation does."""
    size = max(CONFIG_REFERENCE_DRAWS, 2 * n)
    reference, source = draws_of(target, size, seed=0)
    checkpoint = draws_of(target, n, seed=1)[0]
    settings = EvaluationSettings()
    floor_draws, against = hold_out_floor_draws(reference, n, settings)

    def seconds(count: int) -> float:
        start = time.perf_counter()
        score_checkpoints(np.stack([checkpoint] * count), against, target, settings)
        return time.perf_counter() - start

    first = [seconds(1) for _ in range(repeats)]
    many = [seconds(CHECKPOINTS) for _ in range(repeats)]
    further = [(m - f) / (CHECKPOINTS - 1) for m, f in zip(many, first)]
    warm = EvaluationContext(checkpoint, against, target, settings)
    evaluate_groups(warm, CURVE_GROUPS)  # the reference side, once
    context = EvaluationContext(checkpoint, against, target, settings, shared=warm.shared)
    groups = {}
    for name in CURVE_GROUPS:
        start = time.perf_counter()
        METRICS[name](context)
        groups[name] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    floor = noise_floor(floor_draws, against, target, settings)
    floor_seconds = time.perf_counter() - start
    return {
        "reference": f"{size} {source} draws, {against.shape[0]} scored against",
        "seconds_first_checkpoint": round(statistics.median(first), 3),
        "seconds_per_further_checkpoint": round(statistics.median(further), 3),
        "seconds_per_curve_group": groups,
        "floor_seconds": round(floor_seconds, 3),
        "floor": {name: round(value, 5) for name, value in floor.items()},
    }


def training_cost(target: Target, n: int, iterations: int) -> dict:
    """KSIVI's checkpoint overhead at ``checkpoint_draws`` = n over ``iterations``."""
    from sivi_engine.methods import METHODS
    from sivi_engine.settings import resolve

    method = METHODS["ksivi"]()
    overrides = {"iterations": iterations, "num_draws": n, "checkpoint_draws": n}
    defaults = target.method_defaults(method.Settings, "ksivi")
    settings = resolve(method.Settings, defaults | overrides)
    torch.manual_seed(0)
    trace = method.fit(target, settings, torch.device("cpu")).trace
    count, loop = len(trace.checkpoint_iteration), float(trace.checkpoint_seconds[-1])
    return {
        "method": "ksivi",
        "iterations": iterations,
        "checkpoints": count,
        "loop_seconds": round(loop, 3),
        "overhead_seconds": round(trace.checkpoint_overhead_seconds, 3),
        "overhead_seconds_per_checkpoint": round(trace.checkpoint_overhead_seconds / count, 4),
        "overhead_share_of_loop": round(trace.checkpoint_overhead_seconds / loop, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="banana,blr_waveform")
    parser.add_argument("--draws", default="10000,1000", help="draws per checkpoint")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=500, help="KSIVI training iterations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "checkpoint_cost.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.targets.split(","):
        target = make_target(name, {})
        for n in (int(draws) for draws in args.draws.split(",")):
            row = {
                "target": name,
                "dim": target.dim,
                "draws": n,
                "evaluation": evaluation_cost(target, n, args.repeats),
                "training": training_cost(target, n, args.iterations),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "seconds per checkpoint of n draws: evaluation and training overhead",
                "statistic": f"evaluation: median of {args.repeats} runs; training: one run",
                "machine": {
                    "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(),
                    "torch": torch.__version__,
                    "torch_threads": args.threads,
                },
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
