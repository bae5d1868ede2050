"""Quality along training: per-checkpoint scores, the reference's noise floor, MetricSet curves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from metric_fixtures import metric_set

from sivi_engine import artifacts
from sivi_engine.artifacts import ArtifactError
from sivi_engine.metrics import EvaluationContext, EvaluationSettings, evaluate_all, evaluate_groups
from sivi_engine.metrics.curves import (
    CURVE_GROUPS,
    checkpoint_scores,
    hold_out_floor_draws,
    noise_floor,
    score_checkpoints,
)
from sivi_engine.steps.evaluate import evaluate
from sivi_engine.targets import make_target

BANANA = make_target("banana", {})
SETTINGS = EvaluationSettings()


def exact(n: int, seed: int) -> np.ndarray:
    return BANANA.sample(n, torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


def test_checkpoints_are_scored_like_final_draws_and_non_finite_ones_are_not():
    reference, draws = exact(2000, 0), exact(400, 1)
    shifted = draws + 5 * reference.std(axis=0)
    broken = draws.copy()
    broken[7, 1] = np.inf
    curves = score_checkpoints(np.stack([shifted, draws, broken]), reference, BANANA, SETTINGS)
    final = evaluate_groups(EvaluationContext(draws, reference, BANANA, SETTINGS), CURVE_GROUPS)
    assert curves.keys() == final.keys()
    assert {"mmd2", "mmd2_multiscale", "sliced_w1", "kl_qp_density", "mean_error_std"} <= set(final)
    assert "kl_qp_knn" not in final  # the final draws only
    for name, value in final.items():  # the same draws, the same fixed-seed estimators
        assert curves[name][1] == value, name
    assert np.isnan([values[2] for values in curves.values()]).all()
    # Shifted by 5 reference sds: the mean error reads 5 up to the draws' own sd (~0.05 off at
    # n = 400) and MMD² is far above the exact draws' (|MMD²| < 1e-3 at these sizes).
    assert curves["mean_error_std"][0] == pytest.approx(5, rel=0.05)
    assert curves["mmd2"][0] > 0.1 > 1e-3 > abs(curves["mmd2"][1])


def test_noise_floor_scores_held_out_reference_draws_against_the_others():
    """n = 1000 of 4000 exact draws against the other 3000: over seeds 0-4 the kNN KLs were
    within ±0.06, |MMD²| ≤ 3e-4 and the mean error ≤ 0.06 sds (its standard error is
    (1/1000 + 1/3000)^½ ≈ 0.037 per coordinate), so these bounds are ~2.5-3 times that.
    A shared draw would make a nearest-neighbour distance 0 and a kNN KL infinite."""
    reference = exact(4000, 0)
    held_out, rest = hold_out_floor_draws(reference, 1000, SETTINGS)
    assert held_out.shape == (1000, 2) and rest.shape == (3000, 2)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([held_out, rest]), axis=0), np.sort(reference, axis=0)
    )  # a split: disjoint, complete
    floor = noise_floor(held_out, rest, BANANA, SETTINGS)
    assert {
        "floor_mmd2",
        "floor_kl_qp_knn",
        "floor_kl_pq_knn",
        "floor_mean_error_std",
        "floor_sd_ratio_log_max",
    } <= floor.keys()
    assert abs(floor["floor_kl_qp_knn"]) < 0.15 and abs(floor["floor_kl_pq_knn"]) < 0.15
    assert abs(floor["floor_mmd2"]) < 1e-3
    assert floor["floor_mean_error_std"] < 0.15
    np.testing.assert_array_equal(hold_out_floor_draws(reference, 1000, SETTINGS)[0], held_out)


def test_checkpoints_and_floor_are_scored_against_the_same_reference_draws():
    reference, draws = exact(2000, 0), exact(400, 1)
    curves, floor = checkpoint_scores(draws[None], reference, BANANA, SETTINGS)
    held_out, rest = hold_out_floor_draws(reference, 400, SETTINGS)
    assert (
        curves["sliced_w1"][0]
        == evaluate_all(EvaluationContext(draws, rest, BANANA, SETTINGS))["sliced_w1"]
    )
    assert floor == noise_floor(held_out, rest, BANANA, SETTINGS)
    # Fewer than 2n reference draws: no floor, and the checkpoints see the whole reference.
    curves, floor = checkpoint_scores(draws[None], reference[:799], BANANA, SETTINGS)
    assert floor == {}
    assert (
        curves["sliced_w1"][0]
        == evaluate_all(EvaluationContext(draws, reference[:799], BANANA, SETTINGS))["sliced_w1"]
    )


def test_metric_set_curves_validate_round_trip_and_pad_when_combined(tmp_path):
    short = metric_set(
        {"mmd2": 0.1},
        "banana",
        "a",
        0,
        curves={"iteration": [1, 2, 5], "mmd2": [0.5, 0.3, 0.1]},
        created="now",
        versions="{}",
    )
    long = metric_set(
        {"mmd2": 0.05},
        "banana",
        "b",
        0,
        curves={"iteration": [1, 2, 5, 10, 20], "mmd2": [0.6, 0.4, 0.2, 0.1, 0.05]},
        created="now",
        versions="{}",
    )
    back = artifacts.read(
        artifacts.write(short, tmp_path / "m.zarr", artifacts.METRIC_SET), artifacts.METRIC_SET
    )
    assert back.curve_mmd2.dims == ("target", "method", "seed", "checkpoint")
    np.testing.assert_array_equal(back.curve_iteration.values.ravel(), [1, 2, 5])
    combined = artifacts.combine_metric_sets([short, long])
    assert combined.sizes["checkpoint"] == 5
    # a dict, not method=...: ``sel`` reserves the keyword ``method`` for inexact matching
    np.testing.assert_array_equal(
        combined.curve_mmd2.sel({"method": "a"}).values.ravel(), [0.5, 0.3, 0.1, np.nan, np.nan]
    )
    np.testing.assert_array_equal(combined.mmd2.values.ravel(), [0.1, 0.05])
    artifacts.validate(
        combined.assign_attrs(kind="MetricSet", created="now", versions="{}"), artifacts.METRIC_SET
    )


@pytest.mark.parametrize(
    "metrics, curves, field",
    [
        ({}, {"mmd2": [0.5, 0.1]}, "no_prefix"),  # a 4-D variable must be a curve_ one
        ({"curve_mmd2": 0.1}, {}, "curve_mmd2"),  # a curve_ variable must have the checkpoint dim
    ],
)
def test_metric_set_schema_keeps_checkpoint_dims_to_curves(metrics, curves, field):
    ds = metric_set(
        metrics, "banana", "a", 0, curves=curves, created="now", versions="{}", kind="MetricSet"
    )
    with pytest.raises(ArtifactError, match=f"variable '{field}' has dims"):
        artifacts.validate(ds.rename({"curve_mmd2": field}), artifacts.METRIC_SET)


def write_reference(path, n: int = 2000) -> None:
    ds = artifacts.reference_draws(
        exact(n, 0)[None],
        BANANA.param_names(),
        target="banana",
        target_settings="{}",
        target_hash="h",
        engine="exact",
        engine_settings="{}",
        seed=0,
        diagnostics=artifacts.json_attr({"iid": True}),
        wall_seconds=0.0,
        versions="{}",
        created="now",
    )
    artifacts.write(ds, path, artifacts.REFERENCE_DRAWS)


def write_samples(path, final: np.ndarray, checkpoints: np.ndarray, status: str = "ok") -> None:
    """A SampleSet whose checkpoints (K, m, d) sit at iterations 1, 10, 100, ... and loop
    seconds 0.5, 1, 1.5, ..."""
    k = checkpoints.shape[0]
    ds = artifacts.sample_set(
        final,
        BANANA.param_names(),
        step=np.arange(1),
        loss=np.zeros(1),
        elapsed=np.zeros(1),
        checkpoint_samples=checkpoints,
        checkpoint_iteration=10 ** np.arange(k),
        checkpoint_seconds=0.5 * np.arange(1, k + 1),
        method="m",
        label="m",
        target="banana",
        target_settings="{}",
        seed=0,
        settings="{}",
        code_hash="c",
        device="cpu",
        wall_seconds=1.0,
        iterations=10 ** (k - 1),
        status=status,
        diagnostics="{}",
        diagnostics_metadata="{}",
        stopped_on_budget=0,
        checkpoint_overhead_seconds=0.0,
        versions="{}",
        created="now",
    )
    artifacts.write(ds, path, artifacts.SAMPLE_SET)


def evaluated(tmp_path):
    out = evaluate(
        tmp_path / "samples.zarr",
        tmp_path / "reference.zarr",
        tmp_path / "metrics.zarr",
        {},
        device="cpu",
    )
    return artifacts.read(out, artifacts.METRIC_SET)


def test_evaluate_stores_curves_and_the_floor_beside_unchanged_final_metrics(tmp_path):
    write_reference(tmp_path / "reference.zarr")
    draws = exact(400, 1)
    sd = draws.std(axis=0)
    write_samples(tmp_path / "samples.zarr", draws, np.stack([draws + 5 * sd, draws + sd, draws]))
    ds = evaluated(tmp_path)
    curve = {name: ds[name].values.ravel() for name in ds.data_vars if name.startswith("curve_")}
    np.testing.assert_array_equal(curve["curve_iteration"], [1, 10, 100])
    np.testing.assert_array_equal(curve["curve_seconds"], [0.5, 1.0, 1.5])
    assert curve["curve_mmd2"][0] > curve["curve_mmd2"][1] > curve["curve_mmd2"][2]
    # The last checkpoint holds the final draws, scored against 1600 of the reference's 2000
    # draws: over 4 seed pairs the mean error moved by at most 0.02 and the sliced W₁ (0.04 to
    # 0.07 for 400 exact draws) by at most 0.0035.
    assert curve["curve_sliced_w1"][2] == pytest.approx(ds.sliced_w1.item(), abs=0.01)
    assert "curve_kl_qp_knn" not in curve and "kl_qp_knn" in ds.data_vars
    assert curve["curve_mean_error_std"][2] == pytest.approx(ds.mean_error_std.item(), abs=0.05)
    assert ds.kl_qp_knn.dims == ("target", "method", "seed")
    assert "curve_suspect" not in curve and "curve_wall_seconds" not in curve
    assert abs(ds.floor_mmd2.item()) < 1e-3  # 400 reference draws against 1600 others
    assert json.loads(ds.attrs["noise_floor"]) == {
        "floor_draws": 400,
        "reference_draws": 2000,
        "scored": True,
    }


def test_evaluate_scores_the_finite_checkpoints_of_a_diverged_run(tmp_path):
    write_reference(tmp_path / "reference.zarr")
    draws = exact(400, 1)
    broken = draws.copy()
    broken[0] = np.nan
    write_samples(tmp_path / "samples.zarr", broken, np.stack([draws, broken]), status="diverged")
    ds = evaluated(tmp_path)
    assert ds.diverged.item() == 1.0 and "kl_qp_knn" not in ds.data_vars
    mmd2 = ds.curve_mmd2.values.ravel()
    assert np.isfinite(mmd2[0]) and np.isnan(mmd2[1])
