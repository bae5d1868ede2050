"""The sanity gate (sivi_engine.metrics.gate) and its wiring into the evaluation step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sivi_engine import artifacts
from sivi_engine.metrics import EvaluationSettings
from sivi_engine.metrics.gate import divergence_reasons, gate_reasons, trusted_evidence
from sivi_engine.steps.evaluate import evaluate
from sivi_engine.targets import make_target

ALL = trusted_evidence("exact", {"iid": True})
SETTINGS = EvaluationSettings()


def test_reference_trust():
    assert ALL == {"moments", "predictive"}
    assert trusted_evidence("stan-nuts/pystan", {"gate": {"passed": True}}) == ALL
    assert trusted_evidence("stan-nuts/pystan", {"gate": {"passed": False}}) == {"predictive"}
    # SGLD: converged chains of a biased sampler pass R̂/ESS, so only the predictive rule.
    assert trusted_evidence("sgld", {"gate": {"passed": True}}) == {"predictive"}


def test_rules_name_the_value_and_the_setting():
    """The waveform runs of issue 9: a broken KSIVI 67 posterior sds off with LPD −2.53 against
    NUTS's −0.34 fails both rules; a good one (0.55 sds, −0.353) passes."""
    broken = {
        "mean_error_std": 67.0,
        "sd_ratio_log_max": 0.4,
        "test_log_likelihood": -2.53,
        "reference_test_log_likelihood": -0.34,
    }
    good = {
        "mean_error_std": 0.55,
        "sd_ratio_log_max": 0.2,
        "test_log_likelihood": -0.353,
        "reference_test_log_likelihood": -0.34,
    }
    assert gate_reasons(broken, ALL, SETTINGS) == [
        "mean_error_std = 67 (exceeds gate_mean_error_sd = 3)",
        "test_lpd_drop = 2.19 (exceeds gate_lpd_drop = 0.5)",
    ]
    assert gate_reasons(good, ALL, SETTINGS) == []
    # An SGLD reference vouches only for the predictive rule.
    assert gate_reasons(broken, frozenset({"predictive"}), SETTINGS) == [
        "test_lpd_drop = 2.19 (exceeds gate_lpd_drop = 0.5)"
    ]
    assert gate_reasons({"sd_ratio_log_max": float("nan")}, ALL, SETTINGS) != []


def test_divergence_reasons():
    assert divergence_reasons("ok", True) == []
    assert divergence_reasons("diverged", False) == [
        "training status 'diverged'",
        "non-finite draws",
    ]


def write_reference(target_name: str, path, n: int = 4000):
    target = make_target(target_name, {})
    draws = target.sample(n, torch.Generator().manual_seed(0)).numpy()
    ds = artifacts.reference_draws(
        draws[None],
        target.param_names(),
        target=target_name,
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
    return target


def write_samples(target, samples: np.ndarray, path, status: str = "ok"):
    """A one-iteration SampleSet whose one checkpoint holds 200 of its draws (scored cheaply)."""
    ds = artifacts.sample_set(
        samples,
        target.param_names(),
        step=np.arange(1),
        loss=np.zeros(1),
        elapsed=np.zeros(1),
        checkpoint_samples=samples[None, :200],
        checkpoint_iteration=np.ones(1),
        checkpoint_seconds=np.ones(1),
        method="m",
        label="m",
        target=target.name,
        target_settings="{}",
        seed=0,
        settings="{}",
        code_hash="c",
        device="cpu",
        wall_seconds=1.0,
        iterations=1,
        status=status,
        diagnostics="{}",
        diagnostics_metadata="{}",
        stopped_on_budget=0,
        checkpoint_overhead_seconds=0.0,
        versions="{}",
        created="now",
    )
    artifacts.write(ds, path, artifacts.SAMPLE_SET)


def evaluated(tmp_path, name: str, overrides=None) -> tuple[dict[str, float], list[str]]:
    out = evaluate(
        tmp_path / f"{name}.zarr",
        tmp_path / "reference.zarr",
        tmp_path / f"{name}-metrics.zarr",
        overrides or {},
        device="cpu",
    )
    ds = artifacts.read(out, artifacts.METRIC_SET)
    metrics = {key: float(ds[key].values.item()) for key in ds.data_vars}
    return metrics, json.loads(ds.attrs["suspect_reasons"])


@pytest.mark.parametrize(
    "target_name, location", [("banana", "mean_error_std"), ("student_t2d", "median_error_iqr")]
)
def test_evaluate_marks_a_shifted_fit_suspect_and_exact_draws_not(tmp_path, target_name, location):
    """Exact draws (another seed) pass; the same draws shifted by 10 reference sds (banana) or
    10 IQRs (student_t2d, infinite variance: the quantile rule) are suspect with that reason.
    Both are scored on num_draws = 1000 of their 1500 draws."""
    target = write_reference(target_name, tmp_path / "reference.zarr")
    exact = target.sample(1500, torch.Generator().manual_seed(1)).numpy()
    upper, lower = np.quantile(exact, [0.75, 0.25], axis=0)
    unit = exact.std(axis=0) if location == "mean_error_std" else upper - lower
    write_samples(target, exact, tmp_path / "exact.zarr")
    write_samples(target, exact + 10 * unit, tmp_path / "shifted.zarr")

    good, good_reasons = evaluated(tmp_path, "exact", {"num_draws": 1000})
    assert good["suspect"] == 0.0 and good["diverged"] == 0.0 and good_reasons == []
    assert good["scored_draws"] == 1000.0
    bad, bad_reasons = evaluated(tmp_path, "shifted", {"num_draws": 1000})
    assert bad["suspect"] == 1.0 and bad["diverged"] == 0.0
    assert [reason.split(" = ")[0] for reason in bad_reasons] == [location]
    assert bad[location] == pytest.approx(
        10, rel=0.1
    )  # reference and q's spreads differ by MC error


def test_evaluate_marks_a_diverged_run_and_checks_num_draws(tmp_path):
    target = write_reference("banana", tmp_path / "reference.zarr")
    samples = target.sample(500, torch.Generator().manual_seed(1)).numpy()
    samples[3] = np.nan
    write_samples(target, samples, tmp_path / "nan.zarr", status="diverged")
    metrics, reasons = evaluated(tmp_path, "nan")
    assert metrics["diverged"] == 1.0 and metrics["suspect"] == 1.0
    assert reasons == ["training status 'diverged'", "non-finite draws"]
    assert "kl_qp_knn" not in metrics
    # asking for more draws than the run stored scores all of them, and says how many
    assert evaluated(tmp_path, "nan", {"num_draws": 1000})[0]["scored_draws"] == 500.0
