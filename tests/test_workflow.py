"""End to end: Snakemake on the smoke config in a temporary copy of the workflow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sivi_engine import artifacts

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
#: What a run of the workflow reads: the paper config's report also reads the committed anchors.
WORKFLOW_FILES = (
    "Snakefile",
    "workflow",
    "config",
    "profiles",
    "envs",
    "benchmarks/results/anchors.csv",
)


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        source = ROOT / name
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, dest / name)
    return dest


def snakemake(
    cwd: Path, *args: str, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    proc = snakemake(work, "--cores", "2", "--configfile", "config/smoke.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


@pytest.mark.slow
def test_every_artifact_validates_and_every_metric_is_finite(smoke_run):
    config = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())
    targets, labels, seeds = list(config["targets"]), list(config["methods"]), config["seeds"]
    for target in targets:
        ref = artifacts.read(
            smoke_run / f"results/reference/{target}.zarr", artifacts.REFERENCE_DRAWS
        )
        assert ref.sizes["chain"] * ref.sizes["draw"] == config["reference"]["num_draws"]
        for label in labels:
            for seed in seeds:
                run = smoke_run / f"results/runs/{target}/{label}/seed{seed}"
                samples = artifacts.read(run / "samples.zarr", artifacts.SAMPLE_SET)
                assert samples.attrs["status"] == "ok"
                assert samples.sizes["draw"] == config["method_settings"]["num_draws"]
                assert json.loads(samples.attrs["settings"])["iterations"] == 200
                # checkpoints: the default 1-2-5 schedule up to the 200th iteration
                assert samples.checkpoint_iteration.values.tolist() == [
                    1,
                    2,
                    5,
                    10,
                    20,
                    50,
                    100,
                    200,
                ]
                metrics = artifacts.read(run / "metrics.zarr", artifacts.METRIC_SET)
                final = {
                    k: float(v.values.squeeze())
                    for k, v in metrics.data_vars.items()
                    if "checkpoint" not in v.dims
                }
                assert {"kl_qp_knn", "kl_pq_knn", "mmd2", "coverage_90", "wall_seconds"} <= set(
                    final
                )
                assert all(np.isfinite(v) for v in final.values()), (run, final)
                # the curve's last point scores the same iteration the final metrics describe
                assert metrics.curve_iteration.values.squeeze()[-1] == 200
                assert np.isfinite(metrics.curve_mmd2.values).all()
    # ring8 is configured with radius 2 in the smoke config: the setting reaches the target
    ring = artifacts.read(smoke_run / "results/reference/ring8.zarr", artifacts.REFERENCE_DRAWS)
    assert json.loads(ring.attrs["target_settings"])["radius"] == 2.0
    radii = np.linalg.norm(ring.draws.values.reshape(-1, 2), axis=1)
    assert abs(np.median(radii) - 2.0) < 0.1  # sd 0.3 around radius 2


@pytest.mark.slow
def test_report_and_tidy_table_cover_the_grid(smoke_run):
    table = artifacts.read(smoke_run / "results/metrics.zarr", artifacts.METRIC_SET)
    assert dict(table.sizes) == {"target": 3, "method": 2, "seed": 2, "checkpoint": 8}
    csv = (smoke_run / "results/metrics.csv").read_text().splitlines()
    assert len(csv) == 1 + 3 * 2 * 2
    html = (smoke_run / "reports/index.html").read_text()
    # per target: curves, density and loss figures, and KSIVI's two labels compared
    assert html.count("<img") == 3 * 4
    summary = (smoke_run / "reports/summary.md").read_text()
    assert "runs: 12 (12 ok, 0 diverged)" in summary
    assert "### ring8" in summary and "radius: 2.0" in summary


@pytest.mark.slow
def test_nothing_reruns_after_a_complete_run(smoke_run):
    proc = snakemake(smoke_run, "-n", "--cores", "2", "--configfile", "config/smoke.yaml")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lint_is_clean(tmp_path):
    proc = snakemake(copy_workflow(tmp_path), "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"targets": {"banana": {}}, "methods": {"k": {"method": "ksivi"}}, "seed": [0]},
            r"config: unknown key\(s\) \['seed'\]; allowed: .*seeds",
        ),
        (
            {"targets": {"banana": {}}, "methods": {"k": {"method": "ksivi"}}, "device": "tpu"},
            "'tpu' is not one of \\['auto', 'cpu', 'cuda'\\]",
        ),
    ],
)
def test_bad_config_names_the_bad_key(tmp_path, config, message):
    work = copy_workflow(tmp_path)
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "bad.yaml")
    assert proc.returncode != 0
    assert re.search(message, proc.stdout + proc.stderr)


@pytest.mark.parametrize(
    "label",
    ["k`touch PWNED`", "k; touch PWNED", "k $(touch PWNED)", "with space", "../../../../escaped"],
)
def test_hostile_labels_are_refused_at_config_load(tmp_path, label):
    """A label becomes a path component and a shell word: refused by the schema's name
    pattern before any job, nothing executed, nothing written outside the work folder."""
    work = copy_workflow(tmp_path / "work")
    config = {"targets": {"banana": {}}, "methods": {label: {"method": "ksivi"}}}
    (work / "hostile.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--cores", "1", "--configfile", "hostile.yaml")
    assert proc.returncode != 0
    assert "does not match" in proc.stdout + proc.stderr  # the name pattern, named
    assert not list(tmp_path.rglob("PWNED")) and not (work / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"targets": {"banana": {}}, "methods": {"k": {"method": "ksvi"}}},
            r"config methods: 'ksvi' is not a registered method; registered: .*ksivi",
        ),
        (
            {"targets": {"bananna": {}}, "methods": {"k": {"method": "ksivi"}}},
            r"config targets: 'bananna' is not a registered target; registered: .*banana",
        ),
        (
            {"targets": {"banana": {}}, "methods": {"k": {"method": "ksivi"}}, "method": {}},
            r"config: unknown key\(s\) \['method'\]; allowed: .*methods",
        ),
    ],
)
def test_unknown_names_are_refused_with_the_valid_ones(tmp_path, config, message):
    work = copy_workflow(tmp_path)
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "bad.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and re.search(message, out), out[-2000:]
    assert len(out.splitlines()) < 40  # a message, not the whole schema


def test_method_labels_restrict_a_target_and_braces_in_a_source_are_text(tmp_path):
    """A target's ``method_labels`` keeps the others off it; a quoted source with braces
    (e.g. "K in {10, 100}") reaches the config snapshot as text, not as a wildcard."""
    config = {
        "seeds": [0],
        "targets": {"banana": {"method_labels": ["k"]}, "gmm1d": {}},
        "methods": {
            "k": {"method": "ksivi", "source": "K in {10, 100}"},
            "g": {"method": "gvi_mf"},
        },
    }
    work = copy_workflow(tmp_path)
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "c.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert any(line.split() == ["train", "3"] for line in out.splitlines()), out[-2000:]
    config["targets"]["banana"]["method_labels"] = ["kk"]
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "c.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config targets.banana.method_labels: ['kk'] are not configured method labels" in out


def test_dry_run_of_the_default_config_plans_the_whole_grid(tmp_path):
    proc = snakemake(copy_workflow(tmp_path), "-n", "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    # banana, multimodal and blr_waveform; 2 seeds of 5 labels
    for rule, count in {"reference": 3, "train": 30, "evaluate": 30, "report": 1}.items():
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), rule


def test_dry_run_of_the_paper_config_plans_every_target(tmp_path):
    proc = snakemake(
        copy_workflow(tmp_path), "-n", "--cores", "2", "--configfile", "config/paper.yaml"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    # 9 analytic + 6 data targets; 10 seeds of: 10 labels x 12 targets, the 5 of student_t1d,
    # the 3 sequential DSIVI labels x 2 targets, 4 on each digits classifier (1390 runs)
    for rule, count in {"reference": 15, "train": 1390, "evaluate": 1390, "report": 1}.items():
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), rule


def test_dry_run_of_the_uci_config_plans_every_split(tmp_path):
    proc = snakemake(
        copy_workflow(tmp_path), "-n", "--cores", "2", "--configfile", "config/uci.yaml"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    # 8 data sets x 20 splits + protein's 5 = 165 target labels; one seed of 9 labels each;
    # the five large sets' references are `none`
    for rule, count in {"reference": 165, "train": 1485, "evaluate": 1485}.items():
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), rule
    assert "target=protein_split4" in out and "target=protein_split5" not in out


@pytest.mark.slow
def test_cost_section_counts_every_job(smoke_run):
    summary = (smoke_run / "reports/summary.md").read_text()
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in summary[summary.index("## Cost") :].splitlines()
        if line.startswith("| ")
    }
    assert rows["reference"] == "3" and rows["train"] == "12" and rows["evaluate"] == "12"
    assert rows["ksivi_v"] == "6" and rows["ksivi_u"] == "6"


@pytest.mark.slow
def test_snakemake_report_embeds_the_flagged_outputs(smoke_run):
    proc = snakemake(smoke_run, "--configfile", "config/smoke.yaml", "--report", "report.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    for name in ("index.html", "banana_density.png", "ring8_loss.png", "metrics.csv"):
        assert f"Adding {name}" in out, name
    assert (smoke_run / "report.html").stat().st_size > 100_000


def test_a_label_restricted_to_an_unknown_target_is_named(tmp_path):
    work = copy_workflow(tmp_path)
    config = {
        "targets": {"banana": {}},
        "methods": {"k": {"method": "ksivi", "targets": ["ring9"]}},
    }
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "bad.yaml")
    assert proc.returncode != 0
    assert "methods.k.targets: ['ring9'] are not configured targets" in proc.stdout + proc.stderr


def declaring_unsupported(work: Path, method_module: str, settings_line: str) -> dict[str, str]:
    """A copy of the package in ``work`` whose ``method_module`` declares diffusion unsupported
    (after ``settings_line`` of its class), and the environment that imports that copy."""
    shutil.copytree(ROOT / "sivi_engine", work / "sivi_engine")
    path = work / "sivi_engine" / "methods" / f"{method_module}.py"
    source = path.read_text("utf-8")
    assert settings_line in source
    declared = f'{settings_line}    unsupported_targets = {{"diffusion": "its Jacobian"}}\n'
    path.write_text(source.replace(settings_line, declared), "utf-8")
    return {**os.environ, "PYTHONPATH": str(work)}


def test_a_method_that_declares_a_target_unsupported_leaves_it_out_with_the_reason(tmp_path):
    """A method that declares diffusion unsupported (here LIVI, in a copy of the package, as no
    method declares any target today): the grid leaves the pair out, the config snapshot the
    report reads lists it with the reason, and naming the pair explicitly in a label's targets
    is an error that gives the reason."""
    work = copy_workflow(tmp_path)
    env = declaring_unsupported(work, "livi", "    Settings = LIVISettings\n")
    config = {
        "seeds": [0, 1],
        "targets": {"banana": {}, "diffusion": {"reference": {"engine": "stan"}}},
        "methods": {"l": {"method": "livi"}, "k": {"method": "ksivi"}},
    }
    (work / "grid.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "grid.yaml", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    # k on both targets, l on banana only, 2 seeds each
    assert any(line.split() == ["train", "6"] for line in out.splitlines()), out[-2000:]
    proc = snakemake(
        work, "--cores", "1", "--configfile", "grid.yaml", "--", "results/config.yaml", env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    snapshot = yaml.safe_load((work / "results/config.yaml").read_text())
    [pair] = snapshot["not_run"]
    assert (pair["target"], pair["label"]) == ("diffusion", "l")
    assert "Jacobian" in pair["reason"]
    config["methods"]["l"]["targets"] = ["diffusion"]
    (work / "grid.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "grid.yaml", env=env)
    assert proc.returncode != 0
    assert "methods.l.targets: diffusion cannot be run by method livi" in proc.stdout + proc.stderr
