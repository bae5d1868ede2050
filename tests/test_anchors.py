"""The anchor runner (benchmarks/anchors/) on a tiny fake official repository built here: the
official script is imported from the checkout and driven from the outside, its draws become a
SampleSet of the matching project target with the run's provenance, the ordinary evaluation
scores it, and the results land in anchors.csv rows. The BNN scripts' own data split and its
scoring (official_split.py) are checked on synthetic tables of Boston's shape."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from sivi_engine import artifacts
from sivi_engine.steps.reference import reference
from sivi_engine.targets.bnn import network, unflatten

ANCHORS = Path(__file__).resolve().parents[1] / "benchmarks" / "anchors"
sys.path.insert(0, str(ANCHORS))
import collect  # noqa: E402
import official_split  # noqa: E402
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


# --- the BNN scripts' own split (official_split.py), without the official checkout ---------


def boston_shaped(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A table of Boston's shape (506 rows, 13 features), with features of unequal scales."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(506, 13)) * np.arange(1, 14) + np.arange(13)
    return x, 22.5 + 9.2 * rng.normal(size=506)


def test_the_official_split_is_train_test_split_with_random_state_42() -> None:
    from sklearn.model_selection import train_test_split

    train, test = official_split.split_indices(506)
    assert (len(train), len(test)) == (455, 51)
    ref_train, ref_test = train_test_split(np.arange(506), test_size=1 - 0.9, random_state=42)
    np.testing.assert_array_equal(train, ref_train)
    np.testing.assert_array_equal(test, ref_test)
    # the first test rows of Boston's split, as scikit-learn 1.9 / NumPy's RandomState give them
    assert list(test[:5]) == [173, 274, 491, 72, 452]


def test_the_official_split_holds_out_a_dev_set_and_standardises_on_the_rest() -> None:
    x, y = boston_shaped()
    split = official_split.official_split(x, y)
    assert (len(split.train), len(split.dev), len(split.test)) == (409, 46, 51)
    rows = np.concatenate([split.train, split.dev, split.test])
    assert sorted(rows) == list(range(506))  # disjoint, and every row used once
    train, _ = official_split.split_indices(506)
    np.testing.assert_array_equal(split.dev, train[-46:])  # the last training rows
    np.testing.assert_allclose(split.X_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(split.X_train.std(0, ddof=1), 1, rtol=1e-12)  # torch's ddof 1
    assert split.y_mean == pytest.approx(y[split.train].mean(), rel=1e-14)
    assert split.y_sd == pytest.approx(y[split.train].std(ddof=1), rel=1e-14)
    mean, sd = x[split.train].mean(0), x[split.train].std(0, ddof=1)
    np.testing.assert_allclose(split.X_test * sd + mean, x[split.test], rtol=1e-12)
    np.testing.assert_array_equal(split.y_test, y[split.test])  # original scale


def point_mass(d: int, h: int, constant: float) -> np.ndarray:
    """θ of a network that predicts ``constant`` (standardised) everywhere: b2 only."""
    theta = np.zeros(d * h + 2 * h + 1)
    theta[-1] = constant
    return theta


def test_a_point_mass_scores_as_its_closed_form() -> None:
    x, y = boston_shaped(1)
    split = official_split.official_split(x, y)
    draws = np.tile(point_mass(13, 50, 0.5), (7, 1))
    sigma = 4.0
    scores = official_split.predictive_scores(draws, split, sigma)
    residual = split.y_test - (split.y_mean + 0.5 * split.y_sd)
    assert scores["rmse"] == pytest.approx(math.sqrt(np.mean(residual**2)), rel=1e-12)
    closed = -0.5 * math.log(2 * math.pi * sigma**2) - np.mean(residual**2) / (2 * sigma**2)
    assert scores["test_log_likelihood"] == pytest.approx(closed, rel=1e-12)


def test_two_point_masses_score_as_a_mixture_and_the_mean_prediction() -> None:
    x, y = boston_shaped(2)
    split = official_split.official_split(x, y)
    draws = np.stack([point_mass(13, 50, -1.0), point_mass(13, 50, 1.0)])
    scores = official_split.predictive_scores(draws, split, 2.0)
    low, high = split.y_mean - split.y_sd, split.y_mean + split.y_sd

    def normal(mu):
        return np.exp(-0.5 * ((split.y_test - mu) / 2.0) ** 2) / (2.0 * math.sqrt(2 * math.pi))

    mixture = np.mean(np.log(0.5 * normal(low) + 0.5 * normal(high)))
    assert scores["test_log_likelihood"] == pytest.approx(mixture, rel=1e-12)
    # the mean prediction of ±1 sd is ȳ
    rmse = math.sqrt(np.mean((split.y_test - split.y_mean) ** 2))
    assert scores["rmse"] == pytest.approx(rmse, rel=1e-12)


def test_theta_is_read_in_the_official_layout() -> None:
    """W1 row-major (D, H), then b1, W2, b2: the official Bnn's slicing, written out."""
    x, y = boston_shaped(3)
    split = official_split.official_split(x, y)
    d, h = 13, 50
    theta = np.random.default_rng(4).normal(size=(3, d * h + 2 * h + 1)) * 0.3
    w1 = theta[:, : d * h].reshape(-1, d, h)
    b1, w2, b2 = theta[:, d * h : d * h + h], theta[:, d * h + h : -1], theta[:, -1]
    hidden = np.maximum(np.einsum("md,sdh->smh", split.X_test, w1) + b1[:, None, :], 0)
    f = np.einsum("smh,sh->sm", hidden, w2) + b2[:, None]
    predictions = split.y_mean + split.y_sd * f
    scores = official_split.predictive_scores(theta, split, 3.0)
    rmse = math.sqrt(np.mean((split.y_test - predictions.mean(0)) ** 2))
    assert scores["rmse"] == pytest.approx(rmse, rel=1e-12)


def test_the_noise_is_the_official_one_on_the_original_scale() -> None:
    """The official rmse_llk's σ = 1/√γ, which the project's UCI targets share: Boston's KSIVI
    log γ = −2.556 gives 3.59 in the response's units."""
    log_gamma = -2.555990767319021
    assert official_split.official_noise_sd(log_gamma) == pytest.approx(3.58944, rel=1e-5)


def official_record(draws: np.ndarray, x: np.ndarray, y: np.ndarray, log_gamma: float) -> dict:
    """What the driver writes for a BNN run, its official figures computed as rmse_llk does
    (float32, σ = 1/√γ on the original scale)."""
    split = official_split.official_split(x, y)
    z = torch.as_tensor(draws, dtype=torch.float32)
    weights = unflatten(z, 13, 50)
    x_test = torch.as_tensor(split.X_test, dtype=torch.float32)
    pred = network(weights, x_test) * split.y_sd + split.y_mean
    y_test = torch.as_tensor(split.y_test, dtype=torch.float32)
    rmse = float(((pred.mean(0) - y_test) ** 2).mean().sqrt())
    gamma = math.exp(log_gamma)
    log_density = -0.5 * (math.log(2 * math.pi) - log_gamma) - 0.5 * gamma * (pred - y_test) ** 2
    llk = float(torch.logsumexp(log_density, 0).mean() - math.log(len(draws)))
    return {
        "official_data": {
            "log_noise_precision": log_gamma,
            "y_train_mean": split.y_mean,
            "y_train_sd": split.y_sd,
            "train_rows": 409,
            "dev_rows": 46,
            "test_rows": 51,
        },
        "official_scores": {"rmse": rmse, "test_log_likelihood": llk, "draws": len(draws)},
    }


def test_anchor_scores_reproduce_the_official_figures_then_score_the_project_way() -> None:
    x, y = boston_shaped(5)
    draws = np.random.default_rng(6).normal(size=(40, 751)) * 0.2
    record = official_record(draws, x, y, -2.5)
    scores = official_split.anchor_scores(draws, record, x, y, scored_draws=30)
    assert scores["check"]["draws"] == 40 and scores["scored_draws"] == 30
    assert max(scores["check"]["relative_differences"].values()) < 1e-5
    assert scores["official_rmse"] == record["official_scores"]["rmse"]
    split = official_split.official_split(x, y)
    expected = official_split.predictive_scores(draws[:30], split, math.exp(1.25))
    assert scores["rmse"] == pytest.approx(expected["rmse"], rel=1e-12)
    assert scores["test_log_likelihood"] == pytest.approx(
        expected["test_log_likelihood"], rel=1e-12
    )
    assert scores["noise_sd"] == pytest.approx(math.exp(1.25), rel=1e-12)  # 1/√γ, γ = e^−2.5


def test_anchor_scores_refuse_draws_that_do_not_reproduce_the_official_figures() -> None:
    x, y = boston_shaped(5)
    draws = np.random.default_rng(6).normal(size=(40, 751)) * 0.2
    record = official_record(draws, x, y, -2.5)
    with pytest.raises(official_split.SplitMismatch, match="does not reproduce the official"):
        shuffled = draws[:, np.random.default_rng(0).permutation(751)]  # another layout
        official_split.anchor_scores(shuffled, record, x, y)
    record["official_data"]["dev_rows"] = 45
    with pytest.raises(official_split.SplitMismatch, match="train/dev/test rows"):
        official_split.anchor_scores(draws, record, x, y)


def test_the_printed_figures_are_the_last_ones() -> None:
    log = (
        "INFO:sivistein_bnn.py:Epoch [20/200], loss: 1.0, gradient_norm: 2.0, "
        "test_loglik -2.6100, rmse 3.2000\n"
        "######### Epoch [200/200], loss: -5.1, test_loglik -2.5475, rmse 3.0283\n"
    )
    assert official_split.printed_scores(log) == {"rmse": 3.0283, "test_log_likelihood": -2.5475}
    assert official_split.printed_scores("no figures") is None


def test_collect_gathers_split_scores(tmp_path) -> None:
    folder = tmp_path / "runs" / "longinYu+SIVISM" / "sivism_bnn" / "Bnn_boston" / "seed0"
    folder.mkdir(parents=True)
    document = {
        "repo": "longinYu/SIVISM",
        "commit": "c" * 40,
        "script": "sivism_bnn.py",
        "config": "Bnn_boston.yml",
        "target": "bnn_boston",
        "seed": 0,
        "wall_seconds": 3000.0,
        "threads": 1,
        "iterations": 20000,
        "printed": {"rmse": 2.9, "test_log_likelihood": -2.6},
        "scores": {
            "rmse": 2.8,
            "test_log_likelihood": -4.4,
            "official_rmse": 2.8,
            "official_test_log_likelihood": -2.55,
            "scored_draws": 1000,
        },
    }
    (folder / "scores.json").write_text(json.dumps(document))
    csv_path = tmp_path / "anchors.csv"
    collect.main(["--runs", str(tmp_path / "runs"), "--out", str(csv_path)])
    with open(csv_path, newline="") as handle:
        rows = {row["metric"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(collect.SPLIT_METRICS)
    assert float(rows["test_log_likelihood"]["value"]) == -4.4
    assert float(rows["official_printed_rmse"]["value"]) == 2.9
    assert float(rows["seconds_per_1000_iterations"]["value"]) == 150
    assert (rows["rmse"]["target"], rows["rmse"]["wall_seconds"]) == ("bnn_boston", "3000")
    summary = csv_path.with_suffix(".md").read_text()
    assert "### BNN regression on the official split" in summary
    line = (
        "| longinYu/SIVISM | ccccccc | sivism_bnn.py | Bnn_boston.yml | bnn_boston | 1 | 20000 "
        "| 150.0 | 2.8 (n=1) | -4.4 (n=1) | 2.8 (n=1) | -2.55 (n=1) | 2.9 (n=1) | -2.6 (n=1) |"
    )
    assert line in summary


def test_a_bnn_script_needs_the_data_folder_not_a_reference(tmp_path) -> None:
    repo, _ = make_fake_repo(tmp_path)
    (repo / "configs" / "bnn.yml").write_text('target_score: "Bnn_boston"\n')
    official = run.OfficialRun(repo, run.SCRIPTS["sivistein_bnn.py"], "bnn.yml", 0, draws=10)
    with pytest.raises(run.AnchorError, match="give --data-dir"):
        run.run_one(official, None, tmp_path / "o")


def test_a_relative_output_folder_is_the_callers(tmp_path, monkeypatch, banana_reference) -> None:
    """The driver runs in a scratch directory removed afterwards: a relative --out must still
    land where the caller is."""
    repo, _ = make_fake_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    metrics = run.run_one(fake_run(repo), banana_reference, Path("relative"))
    run_dir = tmp_path / "relative" / "longinYu+KSIVI" / "sivistein_2d" / "tiny" / "seed0"
    assert (run_dir / "official" / "draws.npy").is_file()
    assert (run_dir / "official" / "run.json").is_file()
    assert (tmp_path / metrics).resolve() == (run_dir / "metrics.zarr").resolve()
