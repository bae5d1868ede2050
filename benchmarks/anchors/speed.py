"""Seconds per 1000 iterations of each official script and of this project on the same
target, same settings, one thread, one after the other in the same hour.

    python benchmarks/anchors/speed.py --repo longinYu/KSIVI=PATH --repo longinYu/SIVISM=PATH \\
        --waveform SPLIT.npz [--iterations 2000] [--out benchmarks/results/anchors_speed.json]

Pairs: every anchor of :data:`suite.ANCHORS` driven by ``official.py`` (KSIVI's and SIVI-SM's
epoch-structured scripts) whose configuration a reproduction row of ``config/paper.yaml``
names, with that row's (target, label), and :data:`TIMED_ONLY`. The official side runs its
shipped config shortened from the outside (``train.num_epochs`` set so that it runs
``--iterations``), timed over ``learn()`` (its loop, with the per-epoch draws and saving the
script does; plots off). The project side trains the same (target, label) through the
workflow at the paper config's settings with ``iterations`` set to the same count (in a
scratch working directory), timed by the training loop's own clock. Nothing else should run
on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402
from scripts import SCRIPTS  # noqa: E402
from suite import ANCHORS, Anchor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config/paper.yaml"
#: Official configurations timed only (hours at full length here), with the project's (target,
#: label) of the same size; their full-length cost is extrapolated.
TIMED_ONLY = (
    (Anchor("sivistein_langevin_post.py", "kernel_sivi_langevin_post.yml"), "diffusion", "ksivi_v"),
    (Anchor("sivistein_bnn.py", "kernel_sivi_boston.yml"), "bnn_diabetes", "ksivi_v"),
)


def pairs_of(config: dict) -> list[tuple[Anchor, str, str]]:
    """(anchor, target, label) for every anchor a reproduction row names, once each."""
    named = {
        (row["anchor_repo"], row["anchor_config"]): (row["target"], row["method"])
        for row in config["reproduction"]
        if "anchor_repo" in row
    }
    out = []
    for anchor in ANCHORS:
        key = (anchor.repository, "+".join([anchor.config, *anchor.assignments]))
        if key in named and SCRIPTS[anchor.script].driver == "official.py":
            out.append((anchor, *named[key]))
    return out


def official_seconds(
    anchor: Anchor, repo: Path, iterations: int, waveform: Path, scratch: Path
) -> tuple[float, int]:
    """Seconds per 1000 iterations of the official ``learn()``, shortened to ``iterations``,
    and the shipped config's full length in iterations."""
    spec = SCRIPTS[anchor.script]
    official = yaml.safe_load((repo / spec.root / "configs" / anchor.config).read_text("utf-8"))
    per_epoch = official["train"]["num_perepoch"]
    epochs = max(1, iterations // per_epoch)
    match = run.match_of(official["target_score"])
    out = scratch / run.run_folder(spec, anchor.config, anchor.assignments)
    assignments = (*anchor.assignments, f"train.num_epochs={epochs}")
    waveform = waveform if match.needs_waveform else None
    run.train_official(run.OfficialRun(repo, spec, anchor.config, 0, assignments, waveform), out)
    record = json.loads((out / "official" / "run.json").read_text("utf-8"))
    full = official["train"]["num_epochs"] * per_epoch
    return 1000 * record["wall_seconds"] / record["iterations"], full


def project_seconds(
    target: str, label: str, iterations: int, waveform: Path, scratch: Path
) -> float:
    """Seconds per 1000 iterations of the project's training loop at the paper settings."""
    from sivi_engine import artifacts

    workdir = scratch / f"project-{target}-{label}"
    workdir.mkdir()
    overlay = {  # a label's own settings come last in the precedence: iterations win
        "seeds": [0],
        "targets": {"blr_waveform": {"settings": {"data_file": str(waveform.resolve())}}},
        "methods": {label: {"iterations": iterations}},
    }
    (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay), "utf-8")
    store = f"results/runs/{target}/{label}/seed0/samples.zarr"
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    command = [snakemake, "--snakefile", str(ROOT / "Snakefile"), "-d", str(workdir)]
    command += ["--cores", "1", "--configfile", str(CONFIG), str(workdir / "overlay.yaml")]
    subprocess.run([*command, "--", store], check=True, capture_output=True)
    samples = artifacts.read(workdir / store, artifacts.SAMPLE_SET)
    return 1000 * float(samples.elapsed.values[-1]) / int(samples.attrs["iterations"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME=PATH")
    parser.add_argument("--waveform", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/anchors_speed.json")
    args = parser.parse_args(argv)
    repos = {name: Path(path) for name, path in (item.split("=", 1) for item in args.repo)}
    config = yaml.safe_load(CONFIG.read_text("utf-8"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="anchor-speed-") as scratch:
        for anchor, target, label in [*pairs_of(config), *TIMED_ONLY]:
            if anchor.repository not in repos:
                continue
            repo = repos[anchor.repository]
            official, full = official_seconds(
                anchor, repo, args.iterations, args.waveform, Path(scratch)
            )
            project = project_seconds(target, label, args.iterations, args.waveform, Path(scratch))
            rows.append(
                {
                    "repo": anchor.repository,
                    "commit": run.commit_of(repo),
                    "script": anchor.script,
                    "config": "+".join([anchor.config, *anchor.assignments]),
                    "target": target,
                    "label": label,
                    "official_seconds_per_1000": round(official, 3),
                    "project_seconds_per_1000": round(project, 3),
                    "official_iterations": full,
                    "official_hours_at_full_length": round(official * full / 1000 / 3600, 3),
                    "project_hours_at_full_length": round(project * full / 1000 / 3600, 3),
                }
            )
            print(rows[-1], flush=True)
    result = {
        "benchmark": "seconds per 1000 training iterations, official script vs this project",
        "iterations": args.iterations,
        "threads": 1,
        "results": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
