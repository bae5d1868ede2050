"""Run an official script from a user's checkout and score its draws the project's way.

    python benchmarks/anchors/run.py --repo PATH/TO/KSIVI --script sivistein_2d.py \\
        --config banana.yml --seeds 0 1 2 --reference results/reference/banana.zarr \\
        --out results/anchors [--threads 1] [--draws 10000] [--waveform SPLIT.npz]

For each seed: a scratch working directory is laid out like the checkout (its top-level entries
linked, ``datasets/`` a real folder so that the waveform split given with ``--waveform`` can be
written as ``datasets/waveform.mat`` beside the repository's own files); ``official.py`` trains
there in a subprocess with ``--threads`` threads; its draws become a SampleSet
(:func:`anchor_sample_set`: the matching project target, the seed, the repository, its
commit, the script and config, wall seconds and threads) which the ordinary ``evaluate`` step
scores against ``--reference``. Stores land in
``OUT/<repository>/<script>/<config>/seed<S>/{samples,metrics}.zarr``.

A BNN script (an official target with ``official_split``: KSIVI's ``sivistein_bnn.py``,
SIVI-SM's ``sivism_bnn.py`` on Boston) has no project reference: its draws are scored on the
official code's own data split, rebuilt from the project's copy of the table in ``--data-dir``
(:mod:`official_split`), and land in ``OUT/.../seed<S>/scores.json``:

    python benchmarks/anchors/run.py --repo PATH/TO/KSIVI --script sivistein_bnn.py \\
        --config kernel_sivi_boston.yml --seeds 0 --draws 1000 --data-dir ../shared/data/uci
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scripts import SCRIPTS, TARGETS, OfficialScript, TargetMatch  # noqa: E402

from sivi_engine import artifacts  # noqa: E402
from sivi_engine.settings import to_json  # noqa: E402
from sivi_engine.steps.common import provenance_attrs  # noqa: E402

OFFICIAL = Path(__file__).resolve().with_name("official.py")
#: Draws of a checkpoint in the SampleSet (its one checkpoint is the final q): enough for the
#: noise floor the evaluation scores at the checkpoints' draw count.
CHECKPOINT_DRAWS = 1000
#: Draws of q scored, as the paper config scores every run of a target (its smallest
#: ``num_draws``: SVGD's 1000 particles): kNN and MMD estimates depend on n, so the official
#: and the project runs are scored at the same n.
SCORED_DRAWS = 1000
#: Points of the reference at which the official and the project log-densities are compared.
DENSITY_CHECK_POINTS = 2000
#: Largest spread of log p_official − log p_project over those points that still counts as the
#: same density: the official code computes in float32, whose round-off at |log p| ≲ 100 is
#: ≲ 1e-4; a different density differs by O(1) somewhere in its bulk.
DENSITY_TOLERANCE = 1e-3


class AnchorError(RuntimeError):
    """The anchor cannot run as asked (a missing file, an unknown target, a failed script)."""


def commit_of(repo: Path) -> str:
    """The checkout's HEAD commit, or ``"unknown"`` when it is not a git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def official_target_of(repo: Path, spec: OfficialScript, config: str) -> str:
    """The official target a config trains on: its ``target_score`` (``<root>/configs/NAME``
    in the checkout), or the script's own entry in ``spec.configs``."""
    import yaml

    if spec.configs:
        named = dict(spec.configs)
        if config not in named:
            raise AnchorError(f"{spec.script} has no config {config!r}; known: {sorted(named)}")
        return named[config]
    configs = repo / spec.root / "configs"
    path = configs / config
    if not path.is_file():
        shipped = sorted(str(p.relative_to(configs)) for p in configs.rglob("*.yml"))
        raise AnchorError(f"config {config!r} is not in {configs}; shipped: {shipped}")
    return yaml.safe_load(path.read_text("utf-8"))["target_score"]


def match_of(official_target: str) -> TargetMatch:
    if official_target not in TARGETS:
        raise AnchorError(
            f"official target {official_target!r} has no matching project target; "
            f"known: {sorted(TARGETS)}"
        )
    return TARGETS[official_target]


def lay_out_workdir(repo: Path, workdir: Path, waveform: Path | None) -> None:
    """Link the checkout's top-level entries into ``workdir``; ``datasets/`` is a real folder
    of links, plus ``waveform.mat`` written from the split ``waveform`` when given."""
    import scipy.io

    workdir.mkdir(parents=True, exist_ok=True)
    for entry in repo.iterdir():
        if entry.name not in {"datasets", ".git"}:
            (workdir / entry.name).symlink_to(entry)
    datasets = workdir / "datasets"
    datasets.mkdir()
    if (repo / "datasets").is_dir():
        for entry in (repo / "datasets").iterdir():
            (datasets / entry.name).symlink_to(entry)
    if waveform is not None:
        split = np.load(waveform)
        (datasets / "waveform.mat").unlink(missing_ok=True)
        scipy.io.savemat(datasets / "waveform.mat", {k: split[k] for k in split.files})


def density_spread(official_logp: np.ndarray, project_logp: np.ndarray) -> float:
    """max − min of log p_official − log p_project: 0 when the densities agree up to their
    normalising constants."""
    diff = np.asarray(official_logp, np.float64) - np.asarray(project_logp, np.float64)
    return float(diff.max() - diff.min())


def anchor_sample_set(
    draws: np.ndarray,
    record: dict,
    *,
    spec: OfficialScript,
    config: str,
    assignments: tuple[str, ...],
    commit: str,
    target: str,
    target_settings: str,
    param_names: list[str],
    density_check: dict,
) -> xr.Dataset:
    """A SampleSet of an official run's final draws.

    Its one checkpoint is the final q (the first :data:`CHECKPOINT_DRAWS` draws, at the
    official ``learn()``'s wall seconds), its trace one step at the last iteration with no
    loss (the official loss is not comparable across codes). The provenance of the official
    run is in the attrs ``anchor_*``; ``label`` is ``official:<repository>``;
    ``anchor_config`` is the config with the options set from outside appended
    (``banana.yml+train.ustat=true``).
    """
    draws = np.asarray(draws, dtype=np.float64)
    iterations = int(record["iterations"])
    wall = float(record["wall_seconds"])
    finite = bool(np.isfinite(draws).all())
    return artifacts.sample_set(
        draws,
        param_names,
        step=np.array([iterations]),
        loss=np.array([np.nan]),
        elapsed=np.array([wall]),
        checkpoint_samples=draws[None, :CHECKPOINT_DRAWS],
        checkpoint_iteration=np.array([iterations]),
        checkpoint_seconds=np.array([wall]),
        method=record.get("method") or spec.method or Path(config).stem,
        label=f"official:{spec.repository}",
        target=target,
        target_settings=target_settings,
        seed=int(record["seed"]),
        settings=json.dumps(record["official_config"], sort_keys=True),
        code_hash=f"{spec.repository}@{commit}",
        device=record["device"],
        wall_seconds=wall,
        iterations=iterations,
        status="ok" if finite else "diverged",
        stopped_on_budget=0,
        checkpoint_overhead_seconds=0.0,
        diagnostics="{}",
        diagnostics_metadata="{}",
        anchor_repository=spec.repository,
        anchor_commit=commit,
        anchor_script=spec.script,
        anchor_config="+".join([config, *assignments]),
        anchor_threads=int(record["threads"]),
        anchor_changed=json.dumps(record["changed"], sort_keys=True),
        anchor_density_check=json.dumps(density_check, sort_keys=True),
        **provenance_attrs(),
    )


@dataclasses.dataclass(frozen=True)
class OfficialRun:
    """One official training: a script of a checkout at a shipped config and a seed, with the
    options set from outside (``assignments``, ``KEY=VALUE``) and the waveform split to supply
    when the script reads one."""

    repo: Path
    spec: OfficialScript
    config: str
    seed: int
    assignments: tuple[str, ...] = ()
    waveform: Path | None = None
    threads: int = 1
    draws: int = 10_000
    python: str = sys.executable  # the interpreter that runs the driver


def train_official(run: OfficialRun, run_dir: Path, points: np.ndarray | None = None) -> None:
    """Train the official script in a subprocess, in a scratch copy of the checkout's layout;
    its draws and record land in ``run_dir/official``, its output in ``run_dir/official.log``.
    With ``points`` the official log-density there is written too (``official_logp.npy``).
    A relative ``run_dir`` is the caller's: the driver runs in the scratch directory, which is
    removed afterwards."""
    spec = run.spec
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="anchor-") as scratch:
        workdir = Path(scratch) / "work"
        lay_out_workdir(run.repo / spec.root, workdir, run.waveform)
        command = [
            run.python,
            str(OFFICIAL.with_name(spec.driver)),
            *("--repo", str(run.repo), "--script", spec.script, "--config", run.config),
            *("--seed", str(run.seed), "--draws", str(run.draws)),
            *("--out", str(run_dir / "official")),
            *(arg for assignment in run.assignments for arg in ("--set", assignment)),
        ]
        if points is not None:
            np.save(Path(scratch) / "points.npy", points)
            command += ["--logp-at", str(Path(scratch) / "points.npy")]
        threads = str(run.threads)
        env = os.environ | {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        with open(run_dir / "official.log", "w", encoding="utf-8") as log:
            done = subprocess.run(command, cwd=workdir, env=env, stdout=log, stderr=log)
    if done.returncode != 0:
        raise AnchorError(
            f"{spec.script} --config {run.config} failed: see {run_dir / 'official.log'}"
        )


def run_folder(spec: OfficialScript, config: str, assignments: tuple[str, ...] = ()) -> Path:
    """``<owner>+<name>/<script path>/<config path>[+KEY=VALUE...]``, below the output folder."""
    variant = "+".join([str(Path(config).with_suffix("")), *assignments])
    return Path(spec.repository.replace("/", "+")) / Path(spec.script).with_suffix("") / variant


def checked_density(
    official_logp: Path, target: object, points: np.ndarray, match: TargetMatch
) -> dict[str, object]:
    """The density check of a 2-D anchor: the spread of log p_official − log p_project at
    ``points`` (:func:`density_spread`); raises when it exceeds :data:`DENSITY_TOLERANCE`."""
    import torch

    if not official_logp.exists():
        return {"checked": False}
    with torch.no_grad():
        project = target.log_prob(torch.as_tensor(points)).numpy()
    spread = density_spread(np.load(official_logp), project)
    if not spread <= DENSITY_TOLERANCE:
        raise AnchorError(
            f"the official target is not project {match.target}: log-density differences "
            f"spread {spread:.3g} over {len(points)} points"
        )
    return {"checked": True, "points": len(points), "spread": spread}


def split_scores(
    official: OfficialRun,
    match: TargetMatch,
    data_dir: Path | None,
    out: Path,
    scored_draws: int = SCORED_DRAWS,
) -> Path:
    """Train an official BNN script (unless its draws exist) and score its draws on its own
    split (:func:`official_split.anchor_scores`); returns ``scores.json``'s path: the run's
    provenance, the project's and the official code's figures, the figures the script printed
    at its last epoch and the agreement check."""
    from official_split import SplitMismatch, anchor_scores, printed_scores

    from sivi_engine.targets.uci import UCI_DATASETS, read_uci_table

    if data_dir is None:
        raise AnchorError(f"{official.config} is scored on its own split: give --data-dir")
    dataset = UCI_DATASETS[match.target]
    x, y = read_uci_table(Path(data_dir) / dataset.file, dataset)
    spec, config = official.spec, official.config
    run_dir = out / run_folder(spec, config, official.assignments) / f"seed{official.seed}"
    result = run_dir / "official"
    if not (result / "run.json").exists():
        train_official(dataclasses.replace(official, waveform=None), run_dir)
    record = json.loads((result / "run.json").read_text("utf-8"))
    try:
        scores = anchor_scores(
            np.load(result / "draws.npy"),
            record,
            x,
            y,
            hidden_units=dataset.hidden_units,
            scored_draws=scored_draws,
        )
    except SplitMismatch as error:
        raise AnchorError(f"{config}: {error}") from None
    log = run_dir / "official.log"
    printed = printed_scores(log.read_text("utf-8")) if log.exists() else None
    document = {
        "repo": spec.repository,
        "commit": commit_of(official.repo),
        "script": spec.script,
        "config": "+".join([config, *official.assignments]),
        "target": match.target,
        "seed": int(record["seed"]),
        "wall_seconds": float(record["wall_seconds"]),
        "threads": int(record["threads"]),
        "iterations": int(record["iterations"]),
        "method": spec.method,
        "official_data": record["official_data"],
        "printed": printed,
        "printed_draws": record["official_config"]["sampling"]["num"],
        "scores": scores,
    }
    path = run_dir / "scores.json"
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", "utf-8")
    return path


def run_one(
    official: OfficialRun,
    reference: Path | None,
    out: Path,
    scored_draws: int = SCORED_DRAWS,
    data_dir: Path | None = None,
) -> Path:
    """Train, convert and score one official run; returns the MetricSet's path. Its folder
    below ``out`` is :func:`run_folder`; a run whose SampleSet exists is only scored again,
    one whose official draws exist is not trained again. A BNN script is scored on its own
    split instead (:func:`split_scores`, with ``data_dir``; no reference): returns its
    ``scores.json``."""
    from sivi_engine.steps.evaluate import evaluate
    from sivi_engine.targets import make_target

    spec, config = official.spec, official.config
    match = match_of(official_target_of(official.repo, spec, config))
    if match.timed_only:
        raise AnchorError(f"{config}: {match.note}; time it with speed.py instead")
    if match.official_split:
        return split_scores(official, match, data_dir, out, scored_draws)
    if reference is None:
        raise AnchorError(f"{config} is scored against a reference: give --reference")
    if match.needs_waveform and official.waveform is None:
        raise AnchorError(f"{config} reads datasets/waveform.mat: give the split with --waveform")
    if not match.needs_waveform:
        official = dataclasses.replace(official, waveform=None)
    ref = artifacts.read(reference, artifacts.REFERENCE_DRAWS)
    if ref.attrs["target"] != match.target:
        raise AnchorError(
            f"{reference} holds target {ref.attrs['target']!r}; {config} needs {match.target!r}"
        )
    run_dir = out / run_folder(spec, config, official.assignments) / f"seed{official.seed}"
    samples_path = run_dir / "samples.zarr"
    if not samples_path.exists():
        target = make_target(match.target, json.loads(ref.attrs["target_settings"]))
        ref_draws = ref.draws.values.reshape(-1, ref.sizes["param"])
        points = ref_draws[:: max(1, len(ref_draws) // DENSITY_CHECK_POINTS)]
        result = run_dir / "official"
        if not (result / "run.json").exists():
            train_official(official, run_dir, points if target.dim <= 2 else None)
        sample_set = anchor_sample_set(
            np.load(result / "draws.npy"),
            json.loads((result / "run.json").read_text("utf-8")),
            spec=spec,
            config=config,
            assignments=official.assignments,
            commit=commit_of(official.repo),
            target=match.target,
            target_settings=to_json(target.settings),
            param_names=target.param_names(),
            density_check=checked_density(result / "official_logp.npy", target, points, match),
        )
        artifacts.write(sample_set, samples_path, artifacts.SAMPLE_SET)
    overrides = {"num_draws": scored_draws}
    return evaluate(samples_path, reference, run_dir / "metrics.zarr", overrides, "cpu")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="the official checkout")
    parser.add_argument("--script", required=True, choices=sorted(SCRIPTS))
    parser.add_argument("--config", required=True, help="a config shipped under configs/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--reference", type=Path, default=None, help="ReferenceDraws store (not for the BNN)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="the UCI tables (the BNN scripts)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/anchors"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--draws", type=int, default=10_000, help="final draws kept")
    parser.add_argument("--scored-draws", type=int, default=SCORED_DRAWS)
    parser.add_argument("--waveform", type=Path, default=None, help="the waveform split .npz")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.ustat=true"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for the official code's driver"
    )
    args = parser.parse_args(argv)
    if not (args.repo / args.script).is_file():
        parser.error(f"--repo {args.repo} has no {args.script}")
    spec = SCRIPTS[args.script]
    for seed in args.seeds:
        official = OfficialRun(
            args.repo.resolve(),
            spec,
            args.config,
            seed,
            tuple(args.set),
            args.waveform,
            args.threads,
            args.draws,
            args.python,
        )
        metrics = run_one(official, args.reference, args.out, args.scored_draws, args.data_dir)
        print(f"wrote {metrics}")


if __name__ == "__main__":
    main()
