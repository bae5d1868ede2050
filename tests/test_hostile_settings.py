"""Hostile settings: non-finite and out-of-range values, huge draw counts and unwritable outputs
are refused with the field named, before any training (issue 17)."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
import time
import typing

import pytest

from sivi_engine.methods import METHODS
from sivi_engine.reference import ENGINES
from sivi_engine.settings import SettingsError, resolve
from sivi_engine.steps.train import train
from sivi_engine.targets import TARGETS


def float_fields(cls: type, prefix: str = "") -> list[tuple[str, dict]]:
    """(dotted name, override) for every float setting of ``cls``, nested groups and tuples of
    floats included, each override setting that one field to a placeholder."""
    found = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        options = typing.get_args(hint) if typing.get_origin(hint) else (hint,)
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(hint):
            found += [(n, {field.name: o}) for n, o in float_fields(hint, f"{name}.")]
        elif typing.get_origin(hint) is tuple:
            if typing.get_args(hint)[0] is float:
                found.append((name, {field.name: [None]}))
        elif float in options:
            found.append((name, {field.name: None}))
    return found


def with_value(override: dict, value: float) -> dict:
    ((key, inner),) = override.items()
    if isinstance(inner, dict):
        return {key: with_value(inner, value)}
    return {key: [value] if isinstance(inner, list) else value}


SETTINGS = (
    {f"method {n}": METHODS[n].Settings for n in METHODS.names()}
    | {f"engine {n}": ENGINES[n].Settings for n in ENGINES.names()}
    | {f"target {n}": TARGETS[n].Settings for n in TARGETS.names()}
)
CASES = [
    pytest.param(cls, override, name, id=f"{owner}:{name}")
    for owner, cls in SETTINGS.items()
    for name, override in float_fields(cls)
]


def test_every_registered_settings_class_has_float_settings_covered() -> None:
    assert len(CASES) > 40  # every method's lr, lr_decay, budget_seconds, … and the engines'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("cls", "override", "name"), CASES)
def test_non_finite_values_are_refused_naming_the_field(cls, override, name, value) -> None:
    with pytest.raises(SettingsError, match=rf"setting '{re.escape(name)}': expected a finite"):
        resolve(cls, with_value(override, value))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"lr_decay": -1.0}, r"'lr_decay': must lie in \(0, 1\]"),
        ({"lr_decay": 1.5}, r"'lr_decay': must lie in \(0, 1\]"),
        ({"num_draws": 10**12}, r"'num_draws': at most 10000000"),
        ({"budget_seconds": 0.0}, r"'budget_seconds': must be > 0"),
    ],
)
def test_out_of_range_common_settings_are_refused(override, message) -> None:
    with pytest.raises(SettingsError, match=message):
        resolve(METHODS["ksivi"].Settings, override)


@pytest.mark.parametrize("name", ["max_points_mmd", "max_points_knn", "sliced_projections"])
def test_evaluation_sizes_are_bounded(name) -> None:
    from sivi_engine.metrics import EvaluationSettings

    with pytest.raises(SettingsError, match=rf"setting '{name}': at most"):
        resolve(EvaluationSettings, {name: 10**9})


def test_reference_draws_that_cannot_fit_in_memory_are_refused(tmp_path) -> None:
    from sivi_engine.steps.reference import reference

    with pytest.raises(SettingsError, match=r"setting 'num_draws': 10000000000 draws"):
        reference("bnn_diabetes", tmp_path / "r.zarr", "sgld", {"num_draws": 10**10})
    assert not (tmp_path / "r.zarr").exists()


def test_draws_that_cannot_fit_in_memory_are_refused_before_training(tmp_path) -> None:
    """10⁷ draws of the 751-D BNN (120 GB with their float64 copy) on a machine with less:
    refused naming num_draws, in well under the time an iteration of training takes."""
    start = time.perf_counter()
    with pytest.raises(SettingsError, match=r"setting 'num_draws': 10000000 draws of dimension"):
        train("gvi_mf", "bnn_diabetes", 0, tmp_path / "s.zarr", "cpu", {"num_draws": 10**7})
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "s.zarr").exists()


def test_svgd_particles_whose_gram_matrix_cannot_fit_are_refused(tmp_path) -> None:
    """10⁶ particles: a 16 TB Gram matrix, refused naming num_particles before training."""
    start = time.perf_counter()
    with pytest.raises(SettingsError, match=r"setting 'num_particles': svgd's largest working"):
        train("svgd", "banana", 0, tmp_path / "s.zarr", "cpu", {"num_particles": 10**6})
    assert time.perf_counter() - start < 5


def test_an_unwritable_output_fails_before_training(tmp_path) -> None:
    """The output's folder is a file: refused in under 5 s of a 10⁶-iteration run, before any
    iteration."""
    (tmp_path / "blocker").write_text("a file where the run folder should be")
    start = time.perf_counter()
    with pytest.raises(SettingsError, match=r"--out .*blocker/s\.zarr: cannot write into"):
        train("ksivi", "banana", 0, tmp_path / "blocker" / "s.zarr", "cpu", {"iterations": 10**6})
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (b"", r"'.*bad\.npz' is not an \.npz archive"),
        (b"X_train,y_train\n1,0\n", r"'.*bad\.npz' is not an \.npz archive"),
    ],
)
def test_a_file_that_is_not_an_npz_is_named(tmp_path, contents, message) -> None:
    from sivi_engine.targets import make_target

    (tmp_path / "bad.npz").write_bytes(contents)
    with pytest.raises(SettingsError, match=message):
        make_target("blr_waveform", {"data_file": str(tmp_path / "bad.npz")})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "lr=[1, 2"], "--set lr=[1, 2: not a YAML value"),
        (["--threads", "-1"], "argument --threads: expected an integer >= 1, got -1"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
        (
            ["--target-label", "../x"],
            "argument --target-label: expected letters, digits and underscores starting with a "
            "letter, got '../x'",
        ),
        (["--label", "a b"], "argument --label: expected letters, digits and underscores"),
    ],
)
def test_bad_command_lines_are_messages_not_tracebacks(tmp_path, args, message) -> None:
    command = ["train", "--method", "ksivi", "--target", "banana", "--out", str(tmp_path / "o")]
    if "--seed" not in args:
        command += ["--seed", "0"]
    proc = subprocess.run(
        [sys.executable, "-m", "sivi_engine", *command, *args], capture_output=True, text=True
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


def test_evaluate_names_a_store_whose_dimension_is_not_the_targets(tmp_path) -> None:
    """A SampleSet that claims banana but holds 3 parameters: a named error, not a traceback
    from inside a metric."""
    import numpy as np

    from sivi_engine import artifacts
    from sivi_engine.steps.evaluate import evaluate
    from sivi_engine.steps.reference import reference

    ref = reference("banana", tmp_path / "r.zarr", "exact", {"num_draws": 200})
    stored = artifacts.read(ref, artifacts.REFERENCE_DRAWS)
    rng = np.random.default_rng(0)
    samples = artifacts.sample_set(
        rng.normal(size=(50, 3)), ["a", "b", "c"], step=np.array([1]), loss=np.array([0.0]),
        elapsed=np.array([0.0]), checkpoint_samples=rng.normal(size=(1, 10, 3)),
        checkpoint_iteration=np.array([1]), checkpoint_seconds=np.array([0.0]), method="ksivi",
        label="ksivi", target="banana", target_settings=stored.attrs["target_settings"], seed=0,
        settings="{}", code_hash="h", device="cpu", wall_seconds=0.0, iterations=1,
        status="ok", stopped_on_budget=0, checkpoint_overhead_seconds=0.0, diagnostics="{}",
        diagnostics_metadata="{}",
        versions="{}", created="now",
    )  # fmt: skip
    path = artifacts.write(samples, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    with pytest.raises(SettingsError, match=r"s\.zarr holds 3 parameters, but target 'banana'"):
        evaluate(path, ref, tmp_path / "m.zarr", {})
    assert not (tmp_path / "m.zarr").exists()
