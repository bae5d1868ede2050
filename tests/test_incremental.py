"""Incremental reruns: content hashes of the code each job runs are its rerun triggers.

The workflow and a copy of the package run in a temporary directory (PYTHONPATH points at the
copy), so the test can edit the package without touching the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

CONFIG = {
    "seeds": [0],
    "targets": {"banana": {}, "gmm1d": {}},
    "reference": {"engine": "exact", "num_draws": 500},
    "methods": {"k": {"method": "ksivi"}, "s": {"method": "sivi", "mixing_draws": 5}},
    "method_settings": {"iterations": 20, "batch_size": 50, "num_draws": 500},
    "evaluation": {"max_points_mmd": 200},
}


def planned_jobs(work: Path) -> dict[str, int]:
    """Rule -> job count of a dry run (empty when nothing is to be done)."""
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "2", "--configfile", "test.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env(work),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:") :]
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"
    }


def env(work: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(work)}


def edit(path: Path) -> None:
    """A change to what the module runs (a new module-level statement)."""
    path.write_text(path.read_text() + "\n_EDITED = 1\n")


def comment_edit(path: Path) -> None:
    """A comment, a reworded module docstring and a blank line: no change to the code."""
    text = path.read_text()
    assert text.startswith('"""'), path
    path.write_text('"""Reworded. ' + text[3:] + "\n\n# a comment\n")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("incremental")
    for name in ("Snakefile", "workflow", "config", "profiles", "envs", "sivi_engine"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    (work / "test.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", "test.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env(work),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


@pytest.fixture
def package(work):
    """The copied package; every test restores the files it edits."""
    saved = {p: p.read_text() for p in (work / "sivi_engine").rglob("*.py")}
    yield work / "sivi_engine"
    for path, text in saved.items():
        path.write_text(text)


@pytest.mark.slow
def test_touching_files_reruns_nothing(work, package):
    for path in package.rglob("*"):
        os.utime(path)
    os.utime(work / "Snakefile")
    assert planned_jobs(work) == {}


@pytest.mark.slow
def test_editing_a_method_reruns_only_its_jobs(work, package):
    edit(package / "methods" / "ksivi.py")
    # label k on both targets, their evaluations, the report and the final target
    assert planned_jobs(work) == {"train": 2, "evaluate": 2, "report": 1, "all": 1}


@pytest.mark.slow
def test_editing_a_target_module_reruns_only_that_target(work, package):
    edit(package / "targets" / "banana.py")
    # banana's reference and description, both labels on banana, their evaluations, the report
    assert planned_jobs(work) == {
        "reference": 1,
        "describe_target": 1,
        "train": 2,
        "evaluate": 2,
        "report": 1,
        "all": 1,
    }


@pytest.mark.slow
def test_editing_shared_core_reruns_everything_that_imports_it(work, package):
    edit(package / "families" / "semi_implicit.py")  # imported by ksivi and sivi, not by targets
    assert planned_jobs(work) == {"train": 4, "evaluate": 4, "report": 1, "all": 1}
    edit(package / "settings.py")  # imported by the command line, so by every job
    assert planned_jobs(work) == EVERY_JOB


#: Every job of CONFIG but the config snapshot (which runs no package code).
EVERY_JOB = {
    "reference": 2,
    "describe_target": 2,
    "train": 4,
    "evaluate": 4,
    "report": 1,
    "all": 1,
}


@pytest.mark.slow
def test_comments_and_docstrings_rerun_nothing(work, package):
    for path in ("artifacts.py", "settings.py", "cli.py", "steps/train.py", "report/views.py"):
        comment_edit(package / path)
    assert planned_jobs(work) == {}


@pytest.mark.slow
def test_editing_a_step_reruns_what_it_shapes(work, package):
    edit(package / "steps" / "train.py")  # seeds torch, casts the draws: every training job
    assert planned_jobs(work) == {"train": 4, "evaluate": 4, "report": 1, "all": 1}
    (package / "steps" / "train.py").write_text(
        (package / "steps" / "train.py").read_text().replace("\n_EDITED = 1\n", "")
    )
    edit(package / "steps" / "evaluate.py")
    assert planned_jobs(work) == {"evaluate": 4, "report": 1, "all": 1}


@pytest.mark.slow
def test_editing_the_report_reruns_only_the_report(work, package):
    edit(package / "report" / "views.py")
    assert planned_jobs(work) == {"report": 1, "all": 1}


@pytest.mark.slow
def test_editing_the_command_line_reruns_every_job(work, package):
    edit(package / "cli.py")
    assert planned_jobs(work) == EVERY_JOB


@pytest.mark.slow
def test_adding_a_seed_or_a_method_runs_only_the_new_combinations(work, package):
    config = yaml.safe_load((work / "test.yaml").read_text())
    try:
        config["seeds"] = [0, 1]
        config["methods"]["k2"] = {"method": "ksivi", "estimator": "ustat"}
        (work / "test.yaml").write_text(yaml.safe_dump(config))
        # new: seed 1 for k and s, seeds 0 and 1 for k2, on both targets = 8 runs
        assert planned_jobs(work) == {
            "config_snapshot": 1,
            "train": 8,
            "evaluate": 8,
            "report": 1,
            "all": 1,
        }
    finally:
        (work / "test.yaml").write_text(yaml.safe_dump(CONFIG))


def test_editing_a_stan_program_reruns_only_its_targets_reference(tmp_path, monkeypatch):
    """A target names its Stan program as a string constant; the reference hash covers that
    file (and only that one), training hashes do not."""
    from sivi_engine import provenance

    closure = provenance.module_closure(["sivi_engine.targets.bnn"])
    assert [p.name for p in provenance.stan_programs(closure)] == ["bnn.stan"]
    before = {
        target: provenance.reference_code_hash("stan", target)
        for target in ("bnn_diabetes", "blr_waveform")
    }
    training = provenance.training_code_hash("ksivi", "bnn_diabetes")

    programs = tmp_path / "stan"
    shutil.copytree(provenance.STAN_PROGRAM_DIR, programs)
    edit(programs / "bnn.stan")
    monkeypatch.setattr(provenance, "STAN_PROGRAM_DIR", programs)
    assert provenance.reference_code_hash("stan", "bnn_diabetes") != before["bnn_diabetes"]
    assert provenance.reference_code_hash("stan", "blr_waveform") == before["blr_waveform"]
    assert provenance.training_code_hash("ksivi", "bnn_diabetes") == training
