"""The deep-ensemble baseline: MAP members, their draws, and a run scored end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sivi_engine import artifacts
from sivi_engine.methods import METHODS
from sivi_engine.settings import SettingsError, resolve
from sivi_engine.steps.evaluate import evaluate
from sivi_engine.steps.reference import reference
from sivi_engine.steps.train import train
from sivi_engine.targets import make_target

CPU = torch.device("cpu")


def fit(target, overrides: dict, seed: int = 0):
    method = METHODS["ensemble"]()
    settings = resolve(method.Settings, target.method_defaults(method.Settings) | overrides)
    torch.manual_seed(seed)
    return method.fit(target.training_view(), settings, CPU)


def test_members_climb_to_the_mode_and_the_draws_cycle_through_them() -> None:
    """On N(3·1, Σ) in 5-D every member ends at the mean, the unique mode: Adam from N(0, I),
    3–4 units away, at lr 0.05 halved every 200 of 2000 steps (5e-5 at the end, so the steps'
    jitter around the mode is of that order), within 1e-3, far below the sds of 1. Draw i is
    member i mod M."""
    target = make_target("gaussian", {"dim": 5, "mean": 3.0})
    schedule = {"iterations": 2000, "lr": 0.05, "lr_decay": 0.5, "lr_decay_every": 200}
    result = fit(target, {"members": 4, "num_draws": 12} | schedule)
    samples = result.samples.double().numpy()
    assert samples.shape == (12, 5)
    np.testing.assert_allclose(samples, 3.0, atol=1e-3)
    np.testing.assert_array_equal(samples[4:8], samples[:4])
    assert len({tuple(row) for row in samples}) == 4  # four distinct members
    assert result.trace.status == "ok" and result.trace.loss[-1] < result.trace.loss[0]


def test_draws_that_would_weight_members_unequally_are_refused() -> None:
    method = METHODS["ensemble"]()
    assert resolve(method.Settings, {}).num_draws == resolve(method.Settings, {}).members == 10
    with pytest.raises(SettingsError, match=r"setting 'num_draws': 15 draws .* 10 members"):
        resolve(method.Settings, {"num_draws": 15})
    with pytest.raises(SettingsError, match=r"setting 'members': must be >= 1"):
        resolve(method.Settings, {"members": 0, "num_draws": 10})


def test_one_map_network_classifies_the_digits() -> None:
    """Sanity of the target and the method: one member (a MAP fit under the N(0, I) prior) on
    minibatches of 100 reaches ≥ 95 % test accuracy in 3000 Adam steps (measured 97.8 %; a
    2-layer MLP on the digits is expected above 95 %)."""
    target = make_target("bnn_digits")
    result = fit(target, {"members": 1, "num_draws": 1, "iterations": 3000, "lr": 3e-3})
    scores = target.predictive(result.samples)
    assert scores["accuracy"] >= 0.95
    assert scores["test_log_likelihood"] > -0.2  # measured −0.08: confident and mostly right


def test_a_digits_run_is_trained_and_scored_without_reference_draws(tmp_path) -> None:
    """train → the ``none`` reference → evaluate on bnn_digits: the MetricSet holds the
    held-out scores (accuracy, −NLL, top-label ECE, OOD AUROC) of the stored members, equal to
    the target's own scores of the SampleSet's draws."""
    overrides = {"iterations": 50, "members": 2, "num_draws": 4, "checkpoint_draws": 2}
    samples = train("ensemble", "bnn_digits", 0, tmp_path / "s.zarr", "cpu", overrides)
    ref = reference("bnn_digits", tmp_path / "r.zarr", "none", {})
    scored = artifacts.read(
        evaluate(samples, ref, tmp_path / "m.zarr", {}, "cpu"), artifacts.METRIC_SET
    )
    stored = artifacts.read(samples, artifacts.SAMPLE_SET)
    assert stored.samples.shape == (4, 12_060)
    assert stored.checkpoint_samples.shape[1:] == (2, 12_060)
    direct = make_target("bnn_digits").predictive(stored.samples.values)
    for name in ("accuracy", "test_log_likelihood", "ood_auroc"):
        assert scored[name].item() == pytest.approx(direct[name], rel=1e-12)
    assert 0 <= scored.ece.item() <= 1 and scored.suspect.item() == 0
    assert scored.scored_draws.item() == 4
