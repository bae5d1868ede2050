"""The UCI BNN regression targets: loading, the splits of the protocol, standardisation on the
training split only, the precisions, the likelihood's gradient and named errors (issue 18).

They read the tables in ../shared/data/uci (the project does not ship them)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sivi_engine.settings import SettingsError
from sivi_engine.targets import make_target
from sivi_engine.targets.uci import UCI_DATASETS, read_uci_table

UCI_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci"


def uci(name: str, **settings):
    return make_target(name, {"data_dir": str(UCI_DATA), **settings})


@pytest.mark.parametrize("name", sorted(UCI_DATASETS))
def test_a_split_holds_out_a_tenth_standardised_on_the_training_part(name) -> None:
    dataset = UCI_DATASETS[name]
    target = uci(name, split=dataset.splits - 1)
    n, features = dataset.rows, dataset.columns - 1 - len(dataset.drop)
    n_test = round(0.1 * n)
    assert target.X_train.shape == (n - n_test, features)
    assert target.X_test.shape == (n_test, features) and target.y_test.shape == (n_test,)
    h = dataset.hidden_units
    assert target.dim == features * h + 2 * h + 1 == len(target.param_names())
    # standardised with the training split's mean and sd: exactly 0 and 1 there (constant
    # columns, naval's two, are only centred), not on the test part
    x = target.X_train.numpy()
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-9)
    sd = x.std(0)
    assert np.all(np.isclose(sd, 1) | np.isclose(sd, 0))
    np.testing.assert_allclose(target.y_train.mean().item(), 0, atol=1e-9)
    assert target.y_train.std(correction=0).item() == pytest.approx(1)


def test_train_and_test_are_disjoint_and_cover_the_table() -> None:
    dataset = UCI_DATASETS["bnn_yacht"]
    x, y = read_uci_table(UCI_DATA / dataset.file, dataset)
    target = uci("bnn_yacht", split=3)
    raw, _, _ = target.raw_split()
    rows = np.concatenate(
        [np.column_stack([raw.X_train, raw.y_train]), np.column_stack([raw.X_test, raw.y_test])]
    )
    np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(np.column_stack([x, y]), axis=0))
    # on the original scale, the test responses are the raw ones
    np.testing.assert_array_equal(target.y_test.numpy(), raw.y_test)


def test_the_same_split_number_gives_the_same_split_and_another_a_different_one() -> None:
    a, b, c = (uci("bnn_yacht", split=s) for s in (2, 2, 5))
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)


def test_precisions_are_ksivis_where_its_code_fixes_them() -> None:
    """KSIVI's sivistein_bnn.py: Boston log γ = −2.556, log λ = −1.004; energy has none, so
    γ is the least-squares default and λ = 1; a setting wins over both."""
    boston = uci("bnn_boston")
    assert boston.noise_precision == pytest.approx(math.exp(-2.555990767319021))
    assert boston.prior_precision == pytest.approx(math.exp(-1.003869799168037))
    energy = uci("bnn_energy")
    assert energy.prior_precision == 1.0 and energy.noise_precision > 1
    assert uci("bnn_boston", noise_precision=3.0).noise_precision == 3.0
    assert boston.dim == 751  # KSIVI's out_dim for Boston


def test_score_matches_finite_differences_of_the_log_density() -> None:
    """Central differences of log p at a random θ (float64, step 1e-5): agreement to 1e-5
    relative, far below the ReLU kinks' effect at a random point (probability ~0 of a unit at
    exactly 0)."""
    target = uci("bnn_yacht")
    theta = 0.3 * torch.randn(
        2, target.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    grad = target.score(theta)
    step = 1e-5
    for index in (0, 7, target.dim - 1, target.dim // 2):
        shift = torch.zeros_like(theta)
        shift[:, index] = step
        numeric = (target.log_prob(theta + shift) - target.log_prob(theta - shift)) / (2 * step)
        np.testing.assert_allclose(grad[:, index].numpy(), numeric.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, r"setting 'data_dir': give the folder holding the UCI regression tables"),
        ({"data_dir": "/nonexistent/uci"}, r"setting 'data_dir': no such folder"),
        ({"split": 5}, r"setting 'split': bnn_protein has splits 0..4, got 5"),
    ],
)
def test_bad_settings_are_named(settings, message) -> None:
    if "data_dir" not in settings and "split" in settings:
        settings = {"data_dir": str(UCI_DATA), **settings}
    with pytest.raises(SettingsError, match=message):
        make_target("bnn_protein", settings)


def test_a_missing_or_malformed_table_is_named(tmp_path) -> None:
    with pytest.raises(SettingsError, match=r"yacht\.txt' does not exist"):
        make_target("bnn_yacht", {"data_dir": str(tmp_path)})
    (tmp_path / "yacht.txt").write_text("1 2 3\n4 5 6\n")
    with pytest.raises(SettingsError, match=r"has 2 rows and 3 columns; the UCI table yacht"):
        make_target("bnn_yacht", {"data_dir": str(tmp_path)})
    (tmp_path / "yacht.txt").write_text("1 2 x\n")
    with pytest.raises(SettingsError, match=r"yacht\.txt' is not a numeric table"):
        make_target("bnn_yacht", {"data_dir": str(tmp_path)})


@pytest.mark.slow
def test_a_short_workflow_run_on_yacht_over_two_splits(tmp_path) -> None:
    """Snakemake end to end on bnn_yacht, its tables read from the config's data_dir and a sweep
    over two splits: one target label per split, a short SGLD reference for each, two methods,
    the held-out scores on the original scale, and the report's table over splits."""
    import yaml
    from test_workflow import copy_workflow, snakemake

    from sivi_engine import artifacts
    from sivi_engine.report.tables import format_number

    work = copy_workflow(tmp_path)
    config = {
        "seeds": [0],
        "targets": {
            "yacht": {
                "target": "bnn_yacht",
                "settings": {"data_dir": str(UCI_DATA)},
                "sweep": {"split": [3, 4]},
                "reference": {
                    "engine": "sgld",
                    "num_draws": 400,
                    "chains": 20,
                    "burn_in": 300,
                    "thin": 5,
                    "step": 1e-4,
                },
            },
            # without reference draws: held-out scores only (another minibatch size, so not
            # one of the splits above in the table over splits)
            "yacht_alone": {
                "target": "bnn_yacht",
                "settings": {"data_dir": str(UCI_DATA), "split": 5, "data_batch_size": 50},
                "reference": {"engine": "none"},
            },
        },
        "methods": {
            "gvi": {"method": "gvi_mf", "iterations": 300, "lr": 0.01},
            "ksivi": {"method": "ksivi", "iterations": 30},
        },
        "method_settings": {"num_draws": 400, "checkpoint_draws": 400},
        "evaluation": {"max_points_mmd": 300},
    }
    (work / "uci.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--cores", "2", "--configfile", "uci.yaml", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rmse = {}
    for split in (3, 4):
        for label in config["methods"]:
            path = work / f"results/runs/yacht_split{split}/{label}/seed0/metrics.zarr"
            scores = artifacts.read(path, artifacts.METRIC_SET)
            assert scores["target"].values.tolist() == [f"yacht_split{split}"]
            assert scores.attrs["target_name"] == "bnn_yacht"
            # yacht's response (residuary resistance, 0.01 to 62.4) has sd 15.1: a sanity bound
            # of 4 response sds on the original scale after these few iterations, not a fit check
            assert 0 < scores.rmse.item() < 60
            assert np.isfinite(scores.test_log_likelihood.item())
            rmse[split, label] = scores.rmse.item()
        samples = artifacts.read(
            work / f"results/runs/yacht_split{split}/gvi/seed0/samples.zarr", artifacts.SAMPLE_SET
        )
        assert samples.attrs["target"] == "bnn_yacht"
        assert samples.attrs["target_label"] == f"yacht_split{split}"
        assert f'"split": {split}' in samples.attrs["target_settings"]
        assert '"data_batch_size": 100' in samples.attrs["target_settings"]
    alone = artifacts.read(
        work / "results/runs/yacht_alone/ksivi/seed0/metrics.zarr", artifacts.METRIC_SET
    )
    assert 0 < alone.rmse.item() < 60 and np.isfinite(alone.test_log_likelihood.item())
    assert alone.suspect.item() == 0
    assert not {"mmd2", "sliced_w1", "reference_rmse"} & set(alone.data_vars)
    summary = (work / "reports/summary.md").read_text()
    assert "yacht_alone: no reference draws (reference engine none)" in summary
    assert "### yacht_split3" in summary and "### yacht_split4" in summary
    assert "### bnn_yacht (2 splits)" in summary
    # the table over splits: mean ± sd/√2 of the two splits' RMSE, by hand
    values = np.array([rmse[3, "ksivi"], rmse[4, "ksivi"]])
    mean, se = values.mean(), values.std(ddof=1) / math.sqrt(2)
    assert f"| ksivi | {format_number(mean)} ± {format_number(se)} |" in summary


@pytest.mark.parametrize(
    ("name", "noise_sd"),
    [
        # KSIVI's γ, in the papers' convention: 1/√γ in the response's units
        ("bnn_yacht", lambda t: 1 / math.sqrt(math.exp(0.329742800537996))),
        # the least-squares default: the model's own s_y/√γ
        ("bnn_energy", lambda t: t.y_sd / math.sqrt(t.noise_precision)),
    ],
)
def test_predictive_scores_of_a_point_mass_have_their_closed_form(name, noise_sd) -> None:
    """q = δ_θ (S identical draws): the posterior predictive is N(ȳ + s_y f_θ(x), σ²), so
    RMSE and test log-likelihood are those of one Gaussian, computed here in numpy from θ's
    layout (W1 row-major, b1, W2, b2), with σ as the papers' code has it where γ is KSIVI's."""
    target = uci(name, split=1)
    d, h = target.n_inputs, target.hidden_units
    theta = np.random.default_rng(2).normal(0, 0.3, target.dim)
    w1, b1 = theta[: d * h].reshape(d, h), theta[d * h : d * h + h]
    w2, b2 = theta[d * h + h : d * h + 2 * h], theta[-1]
    x, y = target.X_test.numpy(), target.y_test.numpy()
    mean = target.y_mean + target.y_sd * (np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    sd = noise_sd(target)
    expected_ll = np.mean(
        -0.5 * ((y - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)
    )
    scores = target.predictive(np.tile(theta, (3, 1)))
    assert scores["rmse"] == pytest.approx(math.sqrt(np.mean((y - mean) ** 2)), rel=1e-10)
    assert scores["test_log_likelihood"] == pytest.approx(expected_ll, rel=1e-10)


def test_the_training_view_subsamples_the_likelihood_without_bias() -> None:
    """With B of N points per call and the sum of squares scaled by N/B, the training view's
    log-density is unbiased for the full one: its mean over calls lies within 4 standard errors
    of it (a false alarm about once in 16 000 runs), while single calls differ."""
    target = uci("bnn_yacht", split=2, data_batch_size=50)
    view = target.training_view()
    assert view is not target and target.data_batch_size is None and view.data_batch_size == 50
    theta = torch.randn(
        3, target.dim, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    theta = 0.2 * theta
    torch.manual_seed(0)
    calls = torch.stack([view.log_prob(theta) for _ in range(4000)])
    full = target.log_prob(theta)
    error = (calls.mean(0) - full).abs()
    standard_error = calls.std(0) / math.sqrt(len(calls))
    assert torch.all(error < 4 * standard_error), (error, standard_error)
    assert torch.all(calls.std(0) > 0)
    # the score of one call is the gradient of that call's minibatch (autograd of log_prob),
    # so its mean over calls is the full score as well
    scores = torch.stack([view.score(theta[:1]) for _ in range(2000)])
    score_error = (scores.mean(0) - target.score(theta[:1])).abs()
    assert torch.all(score_error < 5 * scores.std(0) / math.sqrt(len(scores)) + 1e-9)


def test_a_data_batch_as_large_as_the_training_set_is_the_full_likelihood() -> None:
    target = uci("bnn_yacht", data_batch_size=10_000)
    assert target.training_view() is target
    full = uci("bnn_yacht", data_batch_size=None)
    assert full.training_view() is full
    assert uci("bnn_yacht").settings.data_batch_size == 100  # the papers' sto_batchsize


def test_a_data_batch_below_one_is_a_named_error() -> None:
    with pytest.raises(SettingsError, match=r"setting 'data_batch_size' must be >= 1 or null"):
        uci("bnn_yacht", data_batch_size=0)


def test_the_none_engine_stores_no_draws_and_refuses_a_target_without_held_out_data(
    tmp_path,
) -> None:
    from sivi_engine import artifacts
    from sivi_engine.steps.reference import reference

    path = reference(
        "bnn_yacht", tmp_path / "r.zarr", "none", {"target": {"data_dir": str(UCI_DATA)}}, "yacht_a"
    )
    stored = artifacts.read(path, artifacts.REFERENCE_DRAWS)
    assert stored.draws.shape == (1, 0, 401) and artifacts.target_label(stored.attrs) == "yacht_a"
    with pytest.raises(SettingsError, match="reference engine 'none': target 'banana' has no held"):
        reference("banana", tmp_path / "b.zarr", "none", {})
    # the config's num_draws, meant for the other engines, sizes nothing: 10⁶ draws of the
    # 12 060-weight digits classifier would be refused (90 GiB) by an engine that held them
    digits = reference("bnn_digits", tmp_path / "d.zarr", "none", {"num_draws": 1_000_000})
    assert artifacts.read(digits, artifacts.REFERENCE_DRAWS).draws.shape == (1, 0, 12060)


def registered_methods() -> list[str]:
    from sivi_engine.methods import METHODS

    return METHODS.names()


@pytest.mark.parametrize("method", registered_methods())
def test_every_method_trains_on_the_minibatch_view(method) -> None:
    """The training view's contract: every registered method that runs the BNNs takes a
    log-density that changes from call to call (3 iterations at its UCI settings: finite draws
    of the right shape, an ok trace); one that declares them unsupported says why."""
    from sivi_engine.methods import METHODS
    from sivi_engine.settings import resolve

    target = uci("bnn_yacht")
    instance = METHODS[method]()
    if target.name in instance.unsupported_targets:
        assert instance.unsupported_targets[target.name].strip()  # a reason the report shows
        return
    view = target.training_view()
    assert view.data_batch_size == 100
    defaults = target.method_defaults(instance.Settings, method)
    settings = resolve(instance.Settings, defaults | {"iterations": 3, "num_draws": 10})
    torch.manual_seed(0)
    result = instance.fit(view, settings, torch.device("cpu"))
    assert result.samples.shape == (10, target.dim) and result.trace.status == "ok"
    assert torch.isfinite(result.samples).all()
