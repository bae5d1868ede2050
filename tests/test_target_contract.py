"""The contract every registered target keeps, tested on each without a list: its density and
score on a few points, its names, what each declared capability promises, and that every
method not declaring it unsupported resolves valid settings on it. Dropping a target file into
``sivi_engine/targets/`` puts it here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sivi_engine.methods import METHODS
from sivi_engine.settings import resolve
from sivi_engine.targets import TARGETS, make_target
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import (
    HeldOutData,
    LatentPath,
    MixtureComponents,
    SemiImplicitDensity,
    StanModel,
)

#: The UCI tables (not shipped): a target whose settings need a ``data_dir`` reads them here.
UCI_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci"
STAN_DIR = Path(__file__).resolve().parents[1] / "sivi_engine" / "targets" / "stan"
NAMES = sorted(TARGETS)


def contract_target(name: str) -> Target:
    fields = {f.name for f in dataclasses.fields(TARGETS[name].Settings)}
    return make_target(name, {"data_dir": str(UCI_DATA)} if "data_dir" in fields else {})


def points(target: Target, n: int = 5) -> torch.Tensor:
    """Exact draws where the target has a sampler, else small N(0, 0.1²) points."""
    generator = torch.Generator().manual_seed(0)
    if target.has_exact_sampler:
        return target.sample(n, generator)
    return 0.1 * torch.randn(n, target.dim, generator=generator, dtype=torch.float64)


def declaring(capability: type) -> list[str]:
    """The registered targets whose class declares ``capability``."""
    return [name for name in NAMES if issubclass(TARGETS[name], capability)]


@pytest.fixture(scope="module", params=NAMES)
def target(request) -> Target:
    return contract_target(request.param)


def test_density_and_score_are_finite_and_agree_with_autograd(target: Target) -> None:
    x = points(target)
    log_p = target.log_prob(x)
    assert log_p.shape == (len(x),) and torch.isfinite(log_p).all()
    with torch.enable_grad():
        leaf = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(target.log_prob(leaf).sum(), leaf)
    # an analytic score equals autograd to float64 rounding of sums of d terms
    torch.testing.assert_close(target.score(x), expected, rtol=1e-9, atol=1e-9)


def test_parameter_names_are_unique_and_one_per_coordinate(target: Target) -> None:
    names = target.param_names()
    assert len(names) == target.dim == len(set(names))


@pytest.mark.parametrize("name", declaring(HeldOutData))
def test_held_out_scores_are_finite_and_declared(name: str) -> None:
    """Its scalar scores are finite, and exactly the ones it declares with their metadata."""
    target = contract_target(name)
    scores = target.predictive(points(target, 3))
    scalars = {k: float(v) for k, v in scores.items() if np.ndim(v) == 0}
    assert scalars and all(np.isfinite(list(scalars.values())))
    declared = type(target).predictive_metrics
    assert set(declared.always) <= set(scalars)
    assert not [k for k in scalars if declared.info(k) is None]
    assert len(target.test_response()) > 0


@pytest.mark.parametrize("name", declaring(StanModel))
def test_a_stan_program_exists_for_a_stan_model(name: str) -> None:
    target = contract_target(name)
    assert (STAN_DIR / target.stan_program).is_file()
    assert target.stan_data()


@pytest.mark.parametrize("name", declaring(MixtureComponents))
def test_mixture_components_form_a_mixture(name: str) -> None:
    target = contract_target(name)
    weights, means = target.component_weights(), target.component_means()
    assert weights.sum() == pytest.approx(1.0) and means.shape == (len(weights), target.dim)
    assert target.component_covariances().shape == (len(weights), target.dim, target.dim)


@pytest.mark.parametrize("name", declaring(LatentPath))
def test_a_latent_path_has_a_time_per_state(name: str) -> None:
    target = contract_target(name)
    assert target.times().shape == target.true_path().shape == (target.dim,)
    assert target.observation_times().shape == target.observations().shape


@pytest.mark.parametrize("name", declaring(SemiImplicitDensity))
def test_a_semi_implicit_factor_bounds_the_density_from_below(name: str) -> None:
    """The K-draw estimate is below log p in expectation (Jensen): over 200 repeats at K = 50
    its mean is below log p plus 3 standard errors of that mean."""
    target = contract_target(name)
    torch.manual_seed(0)
    x = points(target, 2)
    u = target.sample_mixing(3, x)
    assert u.shape == (3, target.mixing_dim) and torch.isfinite(target.mixing_log_prob(u)).all()
    estimates = torch.stack([target.log_prob_estimate(x, 50) for _ in range(200)])
    bound = target.log_prob(x) + 3 * estimates.std(0) / 200**0.5
    assert (estimates.mean(0) <= bound).all()


def test_every_method_resolves_valid_settings_on_it(target: Target) -> None:
    for name in METHODS:
        method = METHODS[name]
        if target.name not in method.unsupported_targets:
            resolve(method.Settings, target.method_defaults(method.Settings, name))
