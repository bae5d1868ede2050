"""Checkpoints along training: the schedule, draws that leave the training path untouched, the
wall-clock budget, and the SampleSet that stores them."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from sivi_engine import artifacts
from sivi_engine.methods import METHODS
from sivi_engine.methods.base import CommonSettings
from sivi_engine.methods.checkpoints import checkpoint_iterations, log_schedule
from sivi_engine.methods.ksivi import KSIVISettings
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError, resolve
from sivi_engine.steps.train import train
from sivi_engine.targets import make_target

CPU = torch.device("cpu")
TINY = {"iterations": 30, "batch_size": 20, "num_draws": 50, "checkpoint_draws": 10}


def fit(method: str, overrides: dict, seed: int = 0):
    """A seeded fit of ``method`` on banana with ``TINY`` settings updated by ``overrides``."""
    instance = METHODS[method]()
    settings = resolve(instance.Settings, TINY | overrides)
    torch.manual_seed(seed)
    return instance.fit(make_target("banana"), settings, CPU)


@pytest.mark.parametrize(
    ("iterations", "expected"),
    [
        (1, (1,)),
        (7, (1, 2, 5, 7)),
        (120, (1, 2, 5, 10, 20, 50, 100, 120)),
        (1000, (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)),
    ],
)
def test_default_schedule_is_1_2_5_per_decade_and_the_last_iteration(iterations, expected):
    assert log_schedule(iterations) == expected
    assert checkpoint_iterations(CommonSettings(iterations=iterations)) == expected


def test_explicit_schedule_is_sorted_and_ends_at_the_last_iteration():
    settings = resolve(CommonSettings, {"iterations": 50, "checkpoints": [30, 10, 30]})
    assert checkpoint_iterations(settings) == (10, 30, 50)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"checkpoints": [0, 10]}, r"'checkpoints': iterations must lie in 1\.\.50.*got \[0\]"),
        ({"checkpoints": [51]}, r"'checkpoints'.*got \[51\]"),
        ({"checkpoint_draws": 0}, "'checkpoint_draws': must be >= 1"),
        ({"budget_seconds": 0}, "'budget_seconds': must be > 0"),
        ({"checkpoints": "10"}, "'checkpoints': expected a list"),
    ],
)
def test_bad_checkpoint_settings_name_the_field(override, message):
    with pytest.raises(SettingsError, match=message):
        resolve(KSIVISettings, {"iterations": 50} | override)


def test_checkpoint_draws_are_capped_at_num_draws():
    assert resolve(CommonSettings, {"num_draws": 300}).draws_per_checkpoint == 300
    smaller = resolve(CommonSettings, {"num_draws": 300, "checkpoint_draws": 100})
    assert smaller.draws_per_checkpoint == 100


def test_runs_with_the_same_seed_are_bit_identical_on_cpu():
    first, second = fit("ksivi", {}), fit("ksivi", {})
    np.testing.assert_array_equal(first.samples.numpy(), second.samples.numpy())
    np.testing.assert_array_equal(first.trace.checkpoint_samples, second.trace.checkpoint_samples)
    assert not np.array_equal(first.samples.numpy(), fit("ksivi", {}, seed=1).samples.numpy())


def test_a_budget_stops_at_a_checkpoint_on_the_unbudgeted_path():
    """A budget of 1 ns is spent by the first checkpoint (iteration 5): the run stops there, says
    so, and its draws there are the unbudgeted run's draws at iteration 5."""
    schedule = {"checkpoints": [5, 20]}
    free = fit("ksivi", schedule)
    budgeted = fit("ksivi", schedule | {"budget_seconds": 1e-9})
    assert budgeted.trace.stopped_on_budget and not free.trace.stopped_on_budget
    assert budgeted.trace.iterations == 5 and budgeted.trace.checkpoint_iteration.tolist() == [5]
    np.testing.assert_array_equal(
        budgeted.trace.checkpoint_samples[0], free.trace.checkpoint_samples[0]
    )
    assert fit("ksivi", schedule | {"budget_seconds": 1e6}).trace.iterations == 30


def test_a_budget_between_sparse_checkpoints_stops_at_the_next_trace_block():
    """Checkpoints only at 25 and 30: a 1 ns budget is seen at the first trace block (10 steps)
    and the run stops there, its last checkpoint, instead of running on to iteration 25."""
    budgeted = fit("ksivi", {"checkpoints": [25, 30], "trace_every": 10, "budget_seconds": 1e-9})
    assert budgeted.trace.stopped_on_budget and budgeted.trace.iterations == 10
    assert budgeted.trace.checkpoint_iteration.tolist() == [10]


def test_checkpoint_time_is_kept_out_of_the_loop_clock():
    """A sampler that sleeps 0.1 s: its 4 calls (iterations 1, 2, 5, 10) are overhead, not loop
    time. Ten Adam steps on one number take well under a millisecond; 0.1 s is the margin."""
    x = torch.nn.Parameter(torch.zeros(1))

    def slow_sample(n: int) -> torch.Tensor:
        time.sleep(0.1)
        return x.detach().expand(n, 1)

    trace = optimise(
        lambda step: (x - 1).square().sum(), [x], CommonSettings(iterations=10), sample=slow_sample
    )
    assert trace.checkpoint_iteration.tolist() == [1, 2, 5, 10]
    assert trace.checkpoint_overhead_seconds >= 0.4
    assert trace.checkpoint_seconds[-1] < 0.1 and trace.elapsed[-1] < 0.1
    assert np.all(np.diff(trace.checkpoint_seconds) >= 0)
    # stored as copies: the parameter kept moving after the first checkpoint
    assert trace.checkpoint_samples[0, 0, 0] != trace.checkpoint_samples[-1, 0, 0]


def test_train_stores_the_checkpoints_and_the_iterations_run(tmp_path):
    overrides = {
        "iterations": 30,
        "batch_size": 20,
        "num_draws": 50,
        "checkpoint_draws": 10,
        "checkpoints": [5, 20],
        "budget_seconds": 1e-9,
    }
    path = train("ksivi", "banana", 0, tmp_path / "s.zarr", "cpu", overrides)
    ds = artifacts.read(path, artifacts.SAMPLE_SET)
    assert ds.checkpoint_samples.shape == (1, 10, 2)
    assert ds.checkpoint_iteration.values.tolist() == [5]
    assert ds.attrs["iterations"] == 5 and ds.attrs["stopped_on_budget"] == 1
    assert ds.attrs["checkpoint_overhead_seconds"] > 0
