"""Cluster execution for real: the workflow through the SLURM executor plugin, against a
single-node SLURM (munged + slurmctld + slurmd from Debian's packages, tests/slurm_cluster.py)
started for this module, with profiles/slurm-local.

What this covers: job submission with sbatch, job steps with srun, status polling (squeue),
group jobs, failure reporting, resubmission on `retries` with attempt-scaled resources.
What it does not: several nodes, accounting (sacct, accounts), GPUs, a real queue.

Each SLURM job costs several seconds (two nested Snakemake start-ups and a job step), and the
plugin polls at 5 s, then 15 s, 25 s, ... later until a job finishes: about 1.5-2 minutes for
the whole module on two cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from slurm_cluster import PACKAGES, SlurmCluster, missing_binaries

from sivi_engine import artifacts

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs")
PROFILE = "profiles/slurm-local"
RUN_TIMEOUT = 420  # seconds for one Snakemake run; a run here takes 1-2 minutes

# Smaller than config/smoke.yaml: one target, one label, one seed, 20 iterations.
TINY = {
    "seeds": [0],
    "device": "cpu",
    "threads_per_job": 1,
    "targets": {"banana": {}},
    "reference": {"engine": "exact", "num_draws": 500, "seed": 12345},
    "methods": {"ksivi_v": {"method": "ksivi", "estimator": "vstat"}},
    "method_settings": {"iterations": 20, "batch_size": 50, "num_draws": 500},
    "evaluation": {"max_points_mmd": 200},
}
# The test cluster's node has no GPU: `train` refuses device cuda (exit code 2) inside its SLURM
# job. (A bad setting no longer gets that far: the pre-flight check refuses it before any job,
# and leaves devices to the nodes that have them.)
BROKEN = {**TINY, "device": "cuda"}
TRAIN_OUTPUT = "results/runs/banana/ksivi_v/seed0/samples.zarr"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_slurm() -> None:
    """Fail in CI, skip loudly elsewhere, when this machine cannot run the test cluster."""
    problems = []
    missing = missing_binaries()
    if missing:
        problems.append(
            f"missing {', '.join(missing)}: install the Debian packages with "
            f"`apt-get install --no-install-recommends {PACKAGES}` (.ci/run does)"
        )
    if os.geteuid() != 0:
        problems.append("the test cluster's daemons run as root (as in CI); this is not root")
    if problems:
        message = "SLURM tests cannot run: " + "; ".join(problems)
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(f"!!! {message} -- SKIPPED outside CI; with CI=true this is a failure !!!")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail(
            "snakemake-executor-plugin-slurm is not installed: pip install -e '.[test]'",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_slurm()
    root = tmp_path_factory.mktemp("slurm")
    slurm = SlurmCluster(root)
    try:
        slurm.start(timeout=60)
        yield slurm
    finally:
        slurm.stop()


@dataclass
class Run:
    work: Path
    returncode: int
    output: str
    run_id: str
    job_ids: list[str]

    def tail(self, chars: int = 6000) -> str:
        return self.output[-chars:]


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, dest / name)
    return dest


def run_workflow(cluster: SlurmCluster, work: Path, config: dict, *args: str) -> Run:
    """Snakemake with the test profile; on a time-out or interrupt, scancel, then end Snakemake
    by PID (it would otherwise wait on cancelled jobs for minutes)."""
    (work / "test.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # (--configfile takes several values: it must not come right before a target)
    command = [SNAKEMAKE, "--configfile", "test.yaml", "--profile", PROFILE, *args]
    proc = subprocess.Popen(
        command,
        cwd=work,
        env=cluster.env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        queue = cluster.command("squeue", "--states=all", "-o", "%i %T %r %C %m %l %k", check=False)
        _end(cluster, proc)
        output, _ = proc.communicate()
        pytest.fail(
            f"snakemake did not finish within {RUN_TIMEOUT} s\nSLURM jobs:\n{queue}\n"
            f"{output[-6000:]}",
            pytrace=False,
        )
    finally:
        if proc.poll() is None:  # an interrupt or another error
            _end(cluster, proc)
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    return Run(
        work,
        proc.returncode,
        output,
        run_id.group(1) if run_id else "",
        re.findall(r"submitted with SLURM jobid (\d+)", output),
    )


def _end(cluster: SlurmCluster, proc: subprocess.Popen) -> None:
    cluster.cancel_all()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def jobs_of(cluster: SlurmCluster, run: Run):
    """This run's SLURM jobs (slurmctld keeps finished ones for MinJobAge), oldest first."""
    jobs = [job for job in cluster.jobs() if run.run_id and job.name == run.run_id]
    return sorted(jobs, key=lambda job: int(job.job_id))


def profile_resources(rule: str) -> dict:
    profile = yaml.safe_load((ROOT / PROFILE / "config.yaml").read_text())
    return {**profile["default-resources"], **profile["set-resources"].get(rule, {})}


def minutes(limit: str) -> float:
    """SLURM's TimeLimit ([D-]HH:MM:SS, or MM:SS) in minutes."""
    days, _, clock = limit.rpartition("-")
    hours, mins, secs = ([0, 0] + [int(part) for part in clock.split(":")])[-3:]
    return int(days or 0) * 1440 + hours * 60 + mins + secs / 60


@pytest.mark.slow
def test_tiny_workflow_runs_to_completion_through_slurm(cluster, tmp_path):
    run = run_workflow(cluster, copy_workflow(tmp_path), TINY)
    assert run.returncode == 0, run.tail()

    # every job Snakemake submitted is a SLURM job of this run that completed, and the SLURM
    # side knows no others: reference and evaluate as group jobs, config_snapshot locally
    jobs = jobs_of(cluster, run)
    assert run.run_id.startswith("sivi_"), run.tail()  # slurm-jobname-prefix from the profile
    assert sorted(run.job_ids, key=int) == [job.job_id for job in jobs], (run.job_ids, jobs)
    assert all(job.state == "COMPLETED" and job.exit_code == "0:0" for job in jobs), jobs
    assert sorted(job.comment for job in jobs) == [
        "rule_evaluation_evaluate",
        "rule_references_reference",
        "rule_report",
        "rule_train_wildcards_banana_ksivi_v_0",
    ]
    assert "localrule config_snapshot" in run.output
    assert not cluster.active_jobs()
    # inside each job the plugin's job step ran the rule as a job step (srun) on the node, and
    # the job's log (written by SLURM) shows it finish
    slurmd_log = (cluster.root / "log" / "slurmd.log").read_text()
    for job in jobs:
        assert f"launch task StepId={job.job_id}.0 " in slurmd_log, job
        assert "Finished jobid" in Path(job.std_out).read_text(), job
    # resources from the profile reached sbatch (train has its own runtime and memory)
    train_resources = profile_resources("train")
    train = next(job for job in jobs if job.comment.startswith("rule_train"))
    assert minutes(train.time_limit) == eval(str(train_resources["runtime"]), {"attempt": 1})
    assert train.memory == f"{train_resources['mem_mb']}M", train

    # the results are complete and valid
    work = run.work
    samples = artifacts.read(work / TRAIN_OUTPUT, artifacts.SAMPLE_SET)
    assert samples.attrs["status"] == "ok"
    assert json.loads(samples.attrs["settings"])["iterations"] == 20
    metrics = artifacts.read(
        work / "results/runs/banana/ksivi_v/seed0/metrics.zarr", artifacts.METRIC_SET
    )
    assert all(np.isfinite(v.values).all() for v in metrics.data_vars.values())
    assert "runs: 1 (1 ok, 0 diverged)" in (work / "reports/summary.md").read_text()
    assert (work / "reports/index.html").stat().st_size > 0


@pytest.mark.slow
def test_failing_job_is_reported_as_failed(cluster, tmp_path):
    work = copy_workflow(tmp_path)
    run = run_workflow(cluster, work, BROKEN, "--retries", "0", TRAIN_OUTPUT)
    assert run.returncode != 0, run.tail()
    assert "SLURM status is: 'FAILED'" in run.output, run.tail()
    jobs = jobs_of(cluster, run)
    assert [(job.comment, job.state, job.exit_code) for job in jobs] == [
        ("rule_train_wildcards_banana_ksivi_v_0", "FAILED", "1:0")
    ], jobs
    assert sorted(run.job_ids, key=int) == [job.job_id for job in jobs]
    # the rule's own log says why; no output was left behind
    train_log = (work / "logs/runs/banana/ksivi_v/seed0/train.log").read_text()
    assert "device 'cuda' was asked for but no CUDA device is visible" in train_log, train_log
    assert not (work / TRAIN_OUTPUT).exists()
    assert not cluster.active_jobs()


@pytest.mark.slow
def test_retries_resubmit_the_failed_job_with_more_resources(cluster, tmp_path):
    retries = yaml.safe_load((ROOT / PROFILE / "config.yaml").read_text())["retries"]
    assert retries >= 1
    runtime = profile_resources("train")["runtime"]  # e.g. "20 * attempt"

    work = copy_workflow(tmp_path)
    run = run_workflow(cluster, work, BROKEN, TRAIN_OUTPUT)  # retries from the profile
    assert run.returncode != 0, run.tail()

    # one SLURM job per attempt, each failed, each asking for the attempt's runtime ...
    jobs = jobs_of(cluster, run)
    attempts = retries + 1
    assert len(jobs) == attempts, (retries, jobs, run.tail())
    assert all(job.state == "FAILED" and job.comment.startswith("rule_train") for job in jobs)
    expected = [eval(str(runtime), {"attempt": attempt}) for attempt in range(1, attempts + 1)]
    assert [minutes(job.time_limit) for job in jobs] == expected, jobs
    # ... and inside each, the rule ran exactly once (no retries within the job), as that
    # attempt: attempts in all = retries + 1
    for attempt, job in enumerate(jobs, start=1):
        log = Path(job.std_out).read_text()
        assert f"--attempt {attempt} " in log, log[-2000:]
        assert log.count("returned non-zero exit status 2") == 1, log[-4000:]
        assert "--retries 0 " in log
    assert not cluster.active_jobs()


def test_cluster_profile_plans_the_default_grid(tmp_path):
    """profiles/slurm parses, with the plugin's settings, and plans the grid (no cluster needed)."""
    proc = subprocess.run(
        [SNAKEMAKE, "--profile", "profiles/slurm", "-n"],
        cwd=copy_workflow(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Using profiles profiles/slurm " in out
    for rule in ("reference", "train", "evaluate", "report"):
        assert any(re.fullmatch(rf"{rule}\s+[1-9]\d*", line) for line in out.splitlines()), rule
    # train's own resources from the profile
    assert re.search(r"mem_mb=2000, .*runtime=60, cpus_per_task=1", out), out[-3000:]
