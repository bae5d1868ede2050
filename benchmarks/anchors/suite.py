"""Run every affordable anchor: the official scripts at their shipped configs, 3 seeds each,
at full official length, scored against the project's references; then collect the results.

    python benchmarks/anchors/suite.py --repo longinYu/KSIVI=PATH --repo longinYu/SIVISM=PATH \\
        --waveform SPLIT.npz [--jobs 2] [--seeds 0 1 2] [--only KSIVI] [--references DIR]

The references are the project's own (``results/reference/<target>.zarr`` as the paper config
builds them; the waveform's with ``settings.data_file`` set to ``--waveform``, see
``benchmarks/reproduction.py --waveform``). Runs already scored are kept; ``--jobs``
single-threaded runs go at once, in the order of :data:`ANCHORS`. Then
``benchmarks/results/anchors.csv`` is written from every MetricSet under ``--out``
(:mod:`collect`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import collect  # noqa: E402
import run  # noqa: E402
from scripts import SCRIPTS, TARGETS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Anchor:
    """One official configuration: a script, a shipped config, options the config offers."""

    script: str
    config: str
    assignments: tuple[str, ...] = ()

    @property
    def repository(self) -> str:
        return SCRIPTS[self.script].repository


#: The affordable official runs, in the order they run (seconds per 1000 iterations on one core
#: of this machine, measured: KSIVI 2-D ~9, SIVI-SM 2-D ~7; AISIVI's bsivi 8-32 and aisivi
#: 70-130 on its 4000-iteration toys; see scripts.NOT_RUNNABLE for the rest).
ANCHORS = (
    Anchor("sivistein_2d.py", "banana.yml"),
    Anchor("sivistein_2d.py", "multimodal.yml"),
    Anchor("sivistein_2d.py", "x_shaped.yml"),
    Anchor("sivistein_lr.py", "LRwaveform.yml"),
    Anchor("sivism_lr.py", "LRwaveform.yml"),
    Anchor("sivism_2d.py", "multimodal.yml"),
    Anchor("sivistein_t_student.py", "student_uc.yml"),
    Anchor("sivism_2d.py", "banana.yml"),
    Anchor("sivism_2d.py", "x_shaped.yml"),
    Anchor("experiments/toy_examples/run.py", "banana/bsivi.yml"),
    Anchor("experiments/toy_examples/run.py", "multimodal/bsivi.yml"),
    Anchor("experiments/toy_examples/run.py", "x_shaped/bsivi.yml"),
    Anchor("experiments/toy_examples/run.py", "x_shaped/aisivi.yml"),
    Anchor("experiments/toy_examples/run.py", "multimodal/aisivi.yml"),
    # SIVI (TensorFlow 2 interpreter: --python mingzhang-yin/SIVI=...), 5000 iterations: 2-D
    # 0.6-0.9 s and waveform 2.4 s per 1000; pvi's SM (JAX interpreter: --python
    # jenninglim/pvi=...), 15000 updates on the toys and 20000 on the waveform: 11-12 and 6.8 s
    # per 1000 (compilation included)
    Anchor("SIVI_2d.py", "xshape"),
    Anchor("SIVI_2d.py", "banana"),
    Anchor("SIVI_2d.py", "gmm2d"),
    Anchor("SIVI_LR.py", "waveform"),
    Anchor("scripts/sec_5.3/runner.py", "waveform-sm"),
    Anchor("scripts/sec_5.2/run.py", "xshape-sm"),
    Anchor("scripts/sec_5.2/run.py", "banana-sm"),
    Anchor("scripts/sec_5.2/run.py", "multimodal-sm"),
)


def _official_target(anchor: Anchor, repos: dict[str, Path]) -> str:
    spec = SCRIPTS[anchor.script]
    return TARGETS[run.official_target_of(repos[anchor.repository], spec, anchor.config)].target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME=PATH")
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="OWNER/NAME=PATH",
        help="interpreter for a repository's driver (default: this one)",
    )
    parser.add_argument("--waveform", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--only", default="", help="run only anchors whose 'repository script config' has this"
    )
    parser.add_argument("--references", type=Path, default=ROOT / "results/reference")
    parser.add_argument("--out", type=Path, default=ROOT / "results/anchors")
    args = parser.parse_args(argv)
    repos = {name: Path(path) for name, path in (item.split("=", 1) for item in args.repo)}
    pythons = dict(item.split("=", 1) for item in args.python)
    jobs = []
    for anchor in ANCHORS:
        name = f"{anchor.repository} {anchor.script} {anchor.config}"
        if anchor.repository not in repos or args.only not in name:
            continue
        reference = args.references / f"{_official_target(anchor, repos)}.zarr"
        spec = SCRIPTS[anchor.script]
        folder = args.out / run.run_folder(spec, anchor.config, anchor.assignments)
        for seed in args.seeds:
            if not (folder / f"seed{seed}" / "metrics.zarr").exists():
                jobs.append((anchor, seed, reference))
    print(f"{len(jobs)} official runs to do", flush=True)
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            pool.submit(
                run.run_one,
                run.OfficialRun(
                    repos[anchor.repository].resolve(),
                    SCRIPTS[anchor.script],
                    anchor.config,
                    seed,
                    anchor.assignments,
                    args.waveform,
                    python=pythons.get(anchor.repository, sys.executable),
                ),
                reference,
                args.out,
            ): (anchor, seed)
            for anchor, seed, reference in jobs
        }
        for future in concurrent.futures.as_completed(futures):
            anchor, seed = futures[future]
            try:
                print(f"done {anchor} seed {seed}: {future.result()}", flush=True)
            except run.AnchorError as error:
                print(f"FAILED {anchor} seed {seed}: {error}", flush=True)
    collect.main(["--runs", str(args.out)])


if __name__ == "__main__":
    main()
