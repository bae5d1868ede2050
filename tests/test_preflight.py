"""The workflow's pre-flight check: every job of a config resolved by its own step before any
job runs, each refusal naming its config entry; a plan that passed is not checked again."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from test_workflow import copy_workflow, snakemake

from sivi_engine import preflight
from sivi_engine.steps.check import check_plan


def plan(runs: list[dict], **target) -> dict:
    """A one-target plan: banana with an exact reference unless ``target`` says otherwise."""
    entry = {
        "target": "banana",
        "settings": {},
        "engine": "exact",
        "reference_options": {"num_draws": 1000, "seed": 1},
        "evaluation": {},
    }
    return {"targets": {"t": entry | target}, "runs": runs}


def run(method: str = "ksivi", **settings) -> dict:
    return {"target": "t", "label": "k", "method": method, "settings": settings}


def test_a_plan_every_step_accepts_has_no_problem() -> None:
    assert check_plan(plan([run(), run("svgd", lr=0.01)])) == []


@pytest.mark.parametrize(
    ("the_plan", "problem"),
    [
        (plan([run(lr=-1)]), "targets.t, methods.k: setting 'lr': must be > 0, got -1.0"),
        (
            plan([run(estimator="v")]),
            "targets.t, methods.k: setting 'estimator': 'v' is not allowed; allowed values: "
            "'vstat', 'ustat'",
        ),
        (plan([run("ksvi")]), "targets.t, methods.k: unknown method 'ksvi'; valid methods: "),
        (
            plan([run(num_draws=10**12)]),
            "targets.t, methods.k: setting 'num_draws': at most 10000000 (the draws are held in "
            "memory), got 1000000000000",
        ),
        (
            plan([], target="blr_waveform"),
            "targets.t (reference): reference engine 'exact': target 'blr_waveform' has no "
            "exact sampler",
        ),
        (
            plan([], engine="none"),
            "targets.t (reference): reference engine 'none': target 'banana' has no held-out",
        ),
        (
            plan([], target="bnn_yacht"),
            "targets.t (reference): setting 'data_dir': give the folder",
        ),
        (
            plan([], evaluation={"max_points_mmd": 0}),
            "targets.t (evaluation): setting 'max_points_mmd'",
        ),
        (  # named once, not again for the runs on it
            plan([run(), run("svgd")], settings={"radius": 1}),
            "targets.t (reference): unknown setting 'target.radius'",
        ),
    ],
)
def test_each_refusal_names_its_config_entry(the_plan: dict, problem: str) -> None:
    problems = check_plan(the_plan)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_plan_that_passed_is_not_checked_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    good, bad = plan([run()]), plan([run(lr=-1)])
    preflight.check(good)
    with pytest.raises(preflight.ConfigError, match="methods.k: setting 'lr': must be > 0"):
        preflight.check(bad)

    def no_subprocess(*args, **kwargs):
        raise AssertionError("checked again")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    preflight.check(good)  # remembered
    with pytest.raises(AssertionError, match="checked again"):
        preflight.check(bad)  # a refused plan is checked every time


def test_the_workflow_stops_before_any_job_with_every_refusal(tmp_path) -> None:
    """Three bad method labels and a data target without its data: one message listing all
    four, exit 1, nothing computed (no results folder)."""
    work = copy_workflow(tmp_path)
    config = {
        "seeds": [0],
        "targets": {"banana": {}, "bnn_yacht": {"settings": {"data_dir": "missing"}}},
        "reference": {"engine": "exact", "num_draws": 1000, "seed": 1},
        "methods": {
            "k1": {"method": "ksivi", "estimatr": "vstat", "targets": ["banana"]},
            "k2": {"method": "ksivi", "estimator": "wrong", "targets": ["banana"]},
            "k3": {"method": "ksivi", "lr": -1, "targets": ["banana"]},
        },
    }
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--cores", "1", "--configfile", "bad.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "config: refused before any job ran:" in out
    assert "targets.banana, methods.k1: unknown setting 'estimatr'" in out
    assert "targets.banana, methods.k2: setting 'estimator': 'wrong' is not allowed" in out
    assert "targets.banana, methods.k3: setting 'lr': must be > 0, got -1.0" in out
    assert "targets.bnn_yacht (reference): setting 'data_dir'" in out
    assert not (work / "results").exists()


def test_entries_sharing_a_refusal_are_one_line() -> None:
    """Five targets without their data folder: one line naming three and counting the rest."""
    entry = {
        "target": "bnn_yacht",
        "settings": {"data_dir": "missing"},
        "engine": "none",
        "reference_options": {},
        "evaluation": {},
    }
    the_plan = {"targets": {f"yacht_{i}": entry for i in range(5)}, "runs": []}
    (line,) = check_plan(the_plan)
    assert line.startswith(
        "targets.yacht_0 (reference), targets.yacht_1 (reference), targets.yacht_2 (reference) "
        "and 2 more: setting 'data_dir'"
    )
