"""The contract every registered method keeps, tested on each without a list: a short run on
its ``smoke_target`` with its ``smoke_settings`` gives finite draws and a full trace, reruns
bit for bit, stores its own q's draws at checkpoints without leaving its training path, reports
its declared diagnostics, and its settings round-trip through JSON and refuse NaN and ±inf.
Dropping a method file into ``sivi_engine/methods/`` puts it here."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from sivi_engine.methods import METHODS
from sivi_engine.settings import SettingsError, resolve, to_json
from sivi_engine.targets import TARGETS, make_target

CPU = torch.device("cpu")
#: Short-run settings every method shares; a method's ``smoke_settings`` go over them.
SHORT = {"iterations": 30, "batch_size": 20, "num_draws": 50, "checkpoint_draws": 10}
NAMES = sorted(METHODS)


def smoke_fit(name: str, seed: int = 0, **extra):
    method = METHODS[name]()
    settings = resolve(method.Settings, SHORT | dict(method.smoke_settings) | extra)
    target = make_target(method.smoke_target)
    torch.manual_seed(seed)
    return method.fit(target.training_view(), settings, CPU), settings, target


@pytest.mark.parametrize("name", NAMES)
def test_a_short_run_gives_finite_draws_a_full_trace_and_its_diagnostics(name: str) -> None:
    result, settings, target = smoke_fit(name)
    assert result.samples.shape == (settings.num_draws, target.dim)
    assert torch.isfinite(result.samples).all()
    assert result.trace.status == "ok" and result.trace.iterations == settings.iterations
    assert np.isfinite(result.trace.loss).all()
    declared = METHODS[name].diagnostics
    assert set(declared.always) <= set(result.diagnostics), sorted(
        set(declared.always) - set(result.diagnostics)
    )
    assert all(math.isfinite(value) for value in result.diagnostics.values())
    # every diagnostic it reports, at the end or at checkpoints, is declared with its metadata
    emitted = set(result.diagnostics) | set(result.trace.checkpoint_diagnostics)
    assert not {key for key in emitted if declared.info(key) is None}


@pytest.mark.parametrize("name", NAMES)
def test_reruns_are_bit_identical_and_another_seed_differs(name: str) -> None:
    first, second = smoke_fit(name)[0], smoke_fit(name)[0]
    np.testing.assert_array_equal(first.samples.numpy(), second.samples.numpy())
    np.testing.assert_array_equal(first.trace.loss, second.trace.loss)
    np.testing.assert_array_equal(first.trace.checkpoint_samples, second.trace.checkpoint_samples)
    assert not np.array_equal(first.samples.numpy(), smoke_fit(name, seed=1)[0].samples.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_checkpoints_leave_the_training_path_unchanged(name: str) -> None:
    """Six checkpoints (1, 2, 5, 10, 20, 30) or only the last: the same final draws and losses,
    bit for bit, and the same draws at the last checkpoint; q moves between checkpoints."""
    every, _, target = smoke_fit(name)
    last_only = smoke_fit(name, checkpoints=[30])[0]
    np.testing.assert_array_equal(every.samples.numpy(), last_only.samples.numpy())
    np.testing.assert_array_equal(every.trace.loss, last_only.trace.loss)
    assert every.trace.checkpoint_iteration.tolist() == [1, 2, 5, 10, 20, 30]
    assert every.trace.checkpoint_samples.shape == (6, 10, target.dim)
    assert last_only.trace.checkpoint_iteration.tolist() == [30]
    np.testing.assert_array_equal(
        every.trace.checkpoint_samples[-1], last_only.trace.checkpoint_samples[-1]
    )
    assert not np.array_equal(every.trace.checkpoint_samples[0], every.trace.checkpoint_samples[-1])


@pytest.mark.parametrize("name", NAMES)
def test_settings_round_trip_through_json(name: str) -> None:
    method = METHODS[name]
    settings = resolve(method.Settings, SHORT | dict(method.smoke_settings))
    assert resolve(method.Settings, json.loads(to_json(settings))) == settings


def float_fields(settings_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(settings_cls) if f.type in ("float", "float | None")]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_float_setting_refuses_nan_and_infinity(name: str, value: float) -> None:
    settings_cls = METHODS[name].Settings
    fields = float_fields(settings_cls)
    assert fields  # lr at least
    for field in fields:
        with pytest.raises(SettingsError, match=field):
            resolve(settings_cls, {field: value})


@pytest.mark.parametrize("name", NAMES)
def test_declared_targets_are_registered_with_a_reason(name: str) -> None:
    method = METHODS[name]
    assert method.smoke_target in TARGETS and method.smoke_target not in method.unsupported_targets
    for target, reason in method.unsupported_targets.items():
        assert target in TARGETS and reason.strip(), (name, target)
