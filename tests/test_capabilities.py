"""Declared capabilities of targets and methods, and the TargetDescription the report reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sivi_engine import artifacts, spec
from sivi_engine.methods import METHODS
from sivi_engine.methods.livi import LIVI
from sivi_engine.reference.stan import stan_program
from sivi_engine.settings import SettingsError
from sivi_engine.steps.describe import describe
from sivi_engine.steps.train import train
from sivi_engine.targets import TARGETS, make_target
from sivi_engine.targets.capabilities import HeldOutData
from sivi_engine.targets.gaussian_mixtures import Gaussian


#: What each registered target declares (targets/*.py); a new target adds its row.
def test_a_capability_without_its_methods_is_refused_at_instantiation() -> None:
    class NoPredictive(Gaussian, HeldOutData):
        def test_response(self) -> np.ndarray:
            return np.zeros(3)

    with pytest.raises(TypeError, match="predictive"):
        NoPredictive()


def test_stan_engine_names_the_capability_a_target_lacks() -> None:
    with pytest.raises(SettingsError, match="has no Stan program.*StanModel"):
        stan_program(make_target("banana"))


def test_the_workflow_reads_the_declarations_of_the_classes_themselves() -> None:
    """The workflow's spec (cached per package source) equals what the classes say at
    runtime: every registered method, target and engine with its module, and each method's
    unsupported targets with their reasons."""
    workflow = spec.registry_spec()
    assert workflow == json.loads(json.dumps(spec.collect(), sort_keys=True))
    assert sorted(workflow["methods"]) == sorted(METHODS)
    assert sorted(workflow["targets"]) == sorted(TARGETS)
    runtime = {m: dict(METHODS[m].unsupported_targets) for m in METHODS}
    assert spec.unsupported_targets() == {m: r for m, r in runtime.items() if r}


def test_a_declaration_may_be_any_expression(monkeypatch) -> None:
    """A reason built at import time (not a literal) reaches the spec as the class holds it."""
    reasons = {name: f"{name} is too large" for name in ("bnn_boston", "bnn_yacht")}
    monkeypatch.setattr(LIVI, "unsupported_targets", reasons)
    assert spec.collect()["methods"]["livi"]["unsupported_targets"] == reasons


def test_train_refuses_a_declared_unsupported_target(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(LIVI, "unsupported_targets", {"diffusion": "its Jacobian"})
    with pytest.raises(SettingsError, match="'livi' cannot run on target 'diffusion': .*Jacobian"):
        train("livi", "diffusion", 0, tmp_path / "s.zarr", "cpu", {})
    assert not (tmp_path / "s.zarr").exists()


def test_description_of_a_2d_target_holds_its_normalised_density(tmp_path) -> None:
    ds = artifacts.read(
        describe("banana", tmp_path / "banana.zarr", {}), artifacts.TARGET_DESCRIPTION
    )
    target = make_target("banana")
    assert json.loads(ds.attrs["capabilities"]) == ["normalised"] and ds.attrs["dim"] == 2
    x, y, density = ds["grid_x"].values, ds["grid_y"].values, ds["density_2d"].values
    assert density.shape == (y.size, x.size) == (160, 160)
    assert ((x[0], x[-1]), (y[0], y[-1])) == tuple(target.plot_bounds())
    cell = (x[1] - x[0]) * (y[1] - y[0])
    # normalised over the box by construction: the Riemann sum is 1 to rounding
    assert density.sum() * cell == pytest.approx(1.0, rel=1e-12)
    # and proportional to exp(log p): the ratio at two grid points matches the target's
    i, j, k, m = 80, 80, 40, 100
    points = torch.tensor([[x[j], y[i]], [x[m], y[k]]], dtype=torch.float64)
    log_p = target.log_prob(points).numpy()
    assert density[i, j] / density[k, m] == pytest.approx(np.exp(log_p[0] - log_p[1]), rel=1e-9)


def test_description_of_the_diffusion_holds_its_path_and_no_density(tmp_path) -> None:
    ds = artifacts.read(
        describe("diffusion", tmp_path / "d.zarr", {}), artifacts.TARGET_DESCRIPTION
    )
    target = make_target("diffusion")
    assert "density_2d" not in ds and "density_1d" not in ds
    np.testing.assert_array_equal(ds["true_path"].values, target.true_path())
    np.testing.assert_array_equal(ds["observation"].values, target.observations())
    np.testing.assert_array_equal(ds["observation_time"].values, target.times()[4::5])


def test_describe_takes_target_settings_only(tmp_path) -> None:
    ds = artifacts.read(
        describe("ring8", tmp_path / "r.zarr", {"target": {"radius": 2.0}}),
        artifacts.TARGET_DESCRIPTION,
    )
    assert json.loads(ds.attrs["target_settings"])["radius"] == 2.0
    with pytest.raises(SettingsError, match=r"\['iterations'\] are not target settings"):
        describe("ring8", tmp_path / "bad.zarr", {"iterations": 3})
    assert not (tmp_path / "bad.zarr").exists()
