"""The UCI suite's cost at paper length, extrapolated from the measured speed on yacht and
protein (``benchmarks/speed.py --targets bnn_yacht,bnn_protein``, results/speed_uci.json).

    python benchmarks/uci_cost.py [--speed benchmarks/results/speed_uci.json]
        [--data-dir ../shared/data/uci] [--out benchmarks/results/uci_cost.json]

With minibatches of 100 points an iteration's cost no longer grows with the data set's size N;
it grows with the network, i.e. the parameter count d (401 on yacht, 1101 on protein). Each
method's seconds per 1000 iterations on a data set are interpolated linearly in d between its
two measurements (six other sets lie between them, d = 501 to 901; power, d = 301, just below,
is extrapolated), and multiplied by the
iterations of its UCI recipe (``Target.method_defaults``) and the data set's splits, one seed
each, as config/uci.yaml runs them. Training loops only: references, evaluation and start-ups
come on top.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ("bnn_yacht", "bnn_protein")


def interpolate(d: int, points: dict[int, float]) -> float:
    """The line through the two (d, seconds) points, at d."""
    (d0, s0), (d1, s1) = sorted(points.items())
    return s0 + (s1 - s0) * (d - d0) / (d1 - d0)


def main() -> None:
    from sivi_engine.methods import METHODS
    from sivi_engine.settings import resolve
    from sivi_engine.targets import make_target
    from sivi_engine.targets.uci import UCI_DATASETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=Path, default=ROOT / "benchmarks/results/speed_uci.json")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "uci")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/uci_cost.json")
    args = parser.parse_args()

    speed = json.loads(args.speed.read_text("utf-8"))["results"]
    targets = {name: make_target(name, {"data_dir": str(args.data_dir)}) for name in UCI_DATASETS}
    rows, totals = [], {}
    for method in sorted({r["method"] for r in speed if "seconds_per_1000_iterations" in r}):
        points = {
            targets[r["target"]].dim: r["seconds_per_1000_iterations"]
            for r in speed
            if r["method"] == method and r["target"] in MEASURED and r.get("threads", 1) == 1
        }
        if len(points) != 2:
            continue
        for name, target in targets.items():
            settings = resolve(
                METHODS[method].Settings, target.method_defaults(METHODS[method].Settings, method)
            )
            seconds = interpolate(target.dim, points)
            hours = UCI_DATASETS[name].splits * settings.iterations / 1000 * seconds / 3600
            rows.append(
                {
                    "method": method,
                    "target": name,
                    "dim": target.dim,
                    "splits": UCI_DATASETS[name].splits,
                    "iterations": settings.iterations,
                    "seconds_per_1000_iterations": round(seconds, 2),
                    "hours": round(hours, 2),
                }
            )
            totals[method] = totals.get(method, 0.0) + hours
    result = {
        "benchmark": "the UCI suite's training loops at paper length, extrapolated",
        "speed_file": args.speed.name,
        "threads": 1,
        "hours_per_method": {m: round(h, 1) for m, h in totals.items()},
        "hours_total": round(sum(totals.values()), 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    for method, hours in totals.items():
        print(f"{method:8s} {hours:8.1f} h")
    print(f"{'total':8s} {sum(totals.values()):8.1f} h on one thread")


if __name__ == "__main__":
    main()
