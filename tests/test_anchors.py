"""The anchor runner (benchmarks/anchors/) on a tiny fake official repository built here: the
official script is imported from the checkout and driven from the outside, its draws become a
SampleSet of the matching project target with the run's provenance, the ordinary evaluation
scores it, and the results land in anchors.csv rows."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sivi_engine import artifacts
from sivi_engine.steps.reference import reference

ANCHORS = Path(__file__).resolve().parents[1] / "benchmarks" / "anchors"
sys.path.insert(0, str(ANCHORS))
import collect  # noqa: E402
import run  # noqa: E402

#: The fake KSIVI: its "training" draws exact banana points, so the scores must be those of
#: exact draws; its contour plot raises, so the run proves plotting was switched off; its
#: learn() logs through the module-level `logger` that the official __main__ block creates.
FAKE_SCRIPT = """
import numpy as np
import torch
from models.target_models import target_distribution

class Sampler:
    def __init__(self, device):
        self.device = device
    def sampling(self, num=1000):
        z = torch.randn(num, 2)
        y2 = RHO * z[:, 0] + (1 - RHO ** 2) ** 0.5 * z[:, 1]
        return torch.stack([z[:, 0], y2 - z[:, 0] ** 2 - 1], 1)

RHO = 0.9

class KernelSIVI:
    def __init__(self, config):
        self.config = config
        self.device = config.device
        self.num_iters = config.train.num_epochs * config.train.num_perepoch
    def learn(self):
        self.target_model = target_distribution[self.config.target_score](self.device)
        self.SemiVInet = Sampler(self.device)
        for epoch in range(self.config.train.num_epochs):
            self.target_model.contour_plot([-1, 1, -1, 1], samples=None)
            logger.info("epoch %d", epoch)
"""

FAKE_TARGETS = """
import numpy as np
import torch

class Banana:
    def __init__(self, device):
        self.device = device
    def logp(self, X):
        Y = torch.stack((X[:, 0], X[:, 0] ** 2 + X[:, 1] + 1), 1)
        inv = torch.tensor([[1.0, -RHO], [-RHO, 1.0]]) / (1 - RHO ** 2)
        quad = torch.einsum("ni,ij,nj->n", Y, inv, Y)
        return -np.log(2 * np.pi) - 0.5 * np.log(1 - RHO ** 2) - 0.5 * quad
    def contour_plot(self, *args, **kwargs):
        raise RuntimeError("plotting was not switched off")

RHO = {rho}
target_distribution = {{"banana": Banana}}
"""

FAKE_PARSE_CONFIG = """
import argparse, os, yaml, torch

def parse_config():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    args = parser.parse_args()
    with open(os.path.join("configs", args.config)) as f:
        config = yaml.safe_load(f)
    def ns(d):
        return argparse.Namespace(**{k: ns(v) if isinstance(v, dict) else v for k, v in d.items()})
    config = ns(config)
    config.device = torch.device("cpu")
    return config
"""

FAKE_CONFIG = """
target_score: "banana"
kernel: "gaussian"
train:
    num_epochs: 3
    num_perepoch: 7
    ustat: False
sampling:
    visual_time: 1
    num: 10
"""


def make_fake_repo(root: Path, rho: float = 0.9) -> tuple[Path, str]:
    """A git checkout shaped like longinYu/KSIVI; returns it and its commit."""
    repo = root / "KSIVI"
    for folder in ("configs", "models", "utils"):
        (repo / folder).mkdir(parents=True)
    (repo / "sivistein_2d.py").write_text(textwrap.dedent(FAKE_SCRIPT))
    (repo / "models" / "target_models.py").write_text(FAKE_TARGETS.format(rho=rho))
    (repo / "utils" / "__init__.py").write_text("")
    (repo / "utils" / "parse_config.py").write_text(FAKE_PARSE_CONFIG)
    (repo / "configs" / "tiny.yml").write_text(FAKE_CONFIG)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fake"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return repo, commit


def fake_run(repo: Path, config: str = "tiny.yml") -> run.OfficialRun:
    return run.OfficialRun(repo, run.SCRIPTS["sivistein_2d.py"], config, 0, draws=1000)


@pytest.fixture(scope="module")
def banana_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "banana.zarr"
    return reference("banana", out, "exact", {"num_draws": 4000, "seed": 7})


@pytest.fixture(scope="module")
def anchored(tmp_path_factory, banana_reference) -> tuple[Path, str, Path]:
    """One fake official run at seed 3, scored; returns the MetricSet, the commit, the out dir."""
    root = tmp_path_factory.mktemp("anchor")
    repo, commit = make_fake_repo(root)
    out = root / "runs"
    official = run.OfficialRun(repo, run.SCRIPTS["sivistein_2d.py"], "tiny.yml", 3, draws=2000)
    metrics = run.run_one(official, banana_reference, out, scored_draws=1500)
    return metrics, commit, out


def test_official_draws_become_a_sample_set_with_provenance(anchored) -> None:
    metrics_path, commit, _ = anchored
    samples = artifacts.read(metrics_path.with_name("samples.zarr"), artifacts.SAMPLE_SET)
    attrs = samples.attrs
    assert (attrs["target"], attrs["seed"], attrs["method"]) == ("banana", 3, "ksivi")
    assert attrs["label"] == "official:longinYu/KSIVI"
    assert attrs["anchor_commit"] == commit and len(commit) == 40
    assert (attrs["anchor_script"], attrs["anchor_config"]) == ("sivistein_2d.py", "tiny.yml")
    assert attrs["anchor_threads"] == 1
    assert attrs["iterations"] == 21  # 3 epochs of 7 iterations, as the fake config says
    assert json.loads(attrs["anchor_changed"]) == {"Banana.contour_plot": "no-op"}
    assert samples.sizes["draw"] == 2000
    check = json.loads(attrs["anchor_density_check"])
    # float32 official logp against the float64 project banana: agreement to round-off
    assert check["checked"] and check["spread"] < 1e-3
    settings = json.loads(attrs["settings"])
    assert settings["train"]["num_epochs"] == 3 and settings["target_score"] == "banana"


def test_the_ordinary_evaluation_scores_exact_draws_as_exact(anchored) -> None:
    metrics_path, _, _ = anchored
    metrics = artifacts.read(metrics_path, artifacts.METRIC_SET)
    value = {name: float(metrics[name].values.item()) for name in metrics.data_vars}
    assert value["suspect"] == 0 and value["diverged"] == 0
    assert value["scored_draws"] == 1500
    # exact draws: unbiased MMD² is O(1/n) around 0 (n = 1500 against 4000); a posterior off
    # by 0.2 sd in the mean already scores > 0.01 on banana
    assert abs(value["mmd2"]) < 5e-3
    # 1500 draws: the standard error of a mean is 0.026 sd, so 0.1 sd is > 3.8 standard errors
    assert value["mean_error_std"] < 0.1


def test_collect_writes_one_row_per_metric(anchored, tmp_path) -> None:
    _, commit, out = anchored
    csv_path = tmp_path / "anchors.csv"
    collect.main(["--runs", str(out), "--out", str(csv_path)])
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == collect.COLUMNS
    by_metric = {row["metric"]: row for row in rows}
    assert {"mmd2", "kl_qp_knn", "kl_pq_knn", "mean_error_std", "sd_ratio_log_max"} <= set(
        by_metric
    )
    row = by_metric["mmd2"]
    assert (row["repo"], row["commit"], row["script"], row["config"]) == (
        "longinYu/KSIVI",
        commit,
        "sivistein_2d.py",
        "tiny.yml",
    )
    assert (row["target"], row["seed"], row["threads"]) == ("banana", "3", "1")
    assert float(by_metric["iterations"]["value"]) == 21
    summary = csv_path.with_suffix(".md").read_text()
    line = f"| longinYu/KSIVI | {commit[:7]} | sivistein_2d.py | tiny.yml | banana | 1 (0) |"
    assert line in summary
    assert f"| {float(by_metric['mmd2']['value']):.3g} (n=1) |" in summary
    assert float(by_metric["seconds_per_1000_iterations"]["value"]) == pytest.approx(
        1000 * float(row["wall_seconds"]) / 21, rel=1e-2
    )


def test_collect_keeps_earlier_runs_and_replaces_a_rerun(anchored, tmp_path) -> None:
    _, commit, out = anchored
    csv_path = tmp_path / "anchors.csv"
    earlier = {
        "repo": "longinYu/SIVISM",
        "commit": "b" * 40,
        "script": "sivism_2d.py",
        "config": "banana.yml",
        "target": "banana",
        "seed": "0",
        "wall_seconds": "300",
        "threads": "1",
    }
    stale = dict(earlier, repo="longinYu/KSIVI", commit=commit, script="sivistein_2d.py")
    stale |= {"config": "tiny.yml", "seed": "3"}
    collect.write_csv(
        [
            earlier | {"metric": "mmd2", "value": "0.25"},
            earlier | {"metric": "seconds_per_1000_iterations", "value": "6"},
            stale | {"metric": "mmd2", "value": "99"},
        ],
        csv_path,
    )
    collect.main(["--runs", str(out), "--out", str(csv_path)])
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    mmd2 = {row["repo"]: float(row["value"]) for row in rows if row["metric"] == "mmd2"}
    assert mmd2["longinYu/SIVISM"] == 0.25  # a run the new folder lacks is kept
    assert mmd2["longinYu/KSIVI"] != 99  # the rerun's rows replace the stale ones
    assert sum(row["metric"] == "mmd2" for row in rows) == 2
    assert "| longinYu/SIVISM | bbbbbbb | sivism_2d.py | banana.yml" in (
        csv_path.with_suffix(".md").read_text()
    )


def test_a_different_official_density_is_refused(tmp_path, banana_reference) -> None:
    repo, _ = make_fake_repo(tmp_path, rho=0.5)
    with pytest.raises(run.AnchorError, match="is not project banana"):
        run.run_one(fake_run(repo), banana_reference, tmp_path / "o")


def test_unknown_config_names_the_shipped_ones(tmp_path, banana_reference) -> None:
    repo, _ = make_fake_repo(tmp_path)
    with pytest.raises(run.AnchorError, match=r"shipped: \['tiny.yml'\]"):
        run.run_one(fake_run(repo, "nope.yml"), banana_reference, tmp_path / "o")


def test_waveform_split_is_written_where_the_script_reads_it(tmp_path) -> None:
    import scipy.io

    repo, _ = make_fake_repo(tmp_path)
    split = tmp_path / "split.npz"
    arrays = {"X_train": np.eye(3), "y_train": np.array([0, 1, 1]), "X_test": np.ones((2, 3))}
    np.savez(split, **arrays, y_test=np.array([1, 0]))
    run.lay_out_workdir(repo, tmp_path / "work", split)
    written = scipy.io.loadmat(tmp_path / "work" / "datasets" / "waveform.mat")
    np.testing.assert_array_equal(written["X_train"], np.eye(3))
    assert (tmp_path / "work" / "configs" / "tiny.yml").is_file()


def test_an_option_set_from_outside_is_recorded(tmp_path, banana_reference) -> None:
    """The U-statistic variant of a shipped config: the option is set on the parsed config,
    recorded as changed, and the config column names it."""
    repo, _ = make_fake_repo(tmp_path)
    official = run.OfficialRun(
        repo, run.SCRIPTS["sivistein_2d.py"], "tiny.yml", 1, ("train.ustat=true",), draws=1000
    )
    metrics = run.run_one(official, banana_reference, tmp_path / "o")
    assert metrics.parent.parent.name == "tiny+train.ustat=true"
    attrs = artifacts.read(metrics.with_name("samples.zarr"), artifacts.SAMPLE_SET).attrs
    assert attrs["anchor_config"] == "tiny.yml+train.ustat=true"
    assert json.loads(attrs["anchor_changed"])["train.ustat"] == [False, True]
    assert json.loads(attrs["settings"])["train"]["ustat"] is True
