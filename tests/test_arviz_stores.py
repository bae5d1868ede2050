"""ReferenceDraws and SampleSet stores open as ArviZ posteriors; ArviZ's diagnostics of them."""

from __future__ import annotations

import warnings

import arviz_stats
import numpy as np
import pytest
import torch
import xarray as xr

from sivi_engine import artifacts
from sivi_engine.artifacts import ArtifactError
from sivi_engine.reference import diagnostics as dg
from sivi_engine.steps.reference import reference
from sivi_engine.targets import make_target

CHAINS, DRAWS = 4, 1000


def _banana_draws(seed: int = 0) -> np.ndarray:
    """Exact i.i.d. draws of banana, shaped (CHAINS, DRAWS, 2)."""
    target = make_target("banana", {})
    draws = target.sample(CHAINS * DRAWS, torch.Generator().manual_seed(seed)).double().numpy()
    return draws.reshape(CHAINS, DRAWS, target.dim)


def _write_reference(path, draws: np.ndarray, sample_stats=None):
    ds = artifacts.reference_draws(
        draws,
        make_target("banana", {}).param_names(),
        sample_stats=sample_stats,
        target="banana",
        target_settings="{}",
        target_hash="h",
        engine="exact",
        engine_settings="{}",
        seed=0,
        diagnostics="{}",
        wall_seconds=0.0,
        versions="{}",
        created="2026-01-01T00:00:00+00:00",
    )
    return artifacts.write(ds, path, artifacts.REFERENCE_DRAWS)


def test_arviz_rhat_and_ess_of_iid_draws(tmp_path):
    """For i.i.d. draws split-R̂ ≈ 1 + (χ²₇/7 − 1)/(2·500) (8 half-chains of 500): R̂ ≥ 1.005
    needs χ²₇ > 42 (p ≈ 1e-6). Bulk ESS ≈ S = 4000: five seeds gave 0.93–1.04 S, so ±15%.
    ArviZ's rank-normalised R̂ and bulk ESS are the estimators the reference gate computes
    (sivi_engine.reference.diagnostics): equal up to float rounding."""
    draws = _banana_draws()
    tree = xr.open_datatree(_write_reference(tmp_path / "r.zarr", draws), engine="zarr")
    rhat = arviz_stats.rhat(tree)["theta"]
    ess = arviz_stats.ess(tree, method="bulk")["theta"]
    assert list(rhat.param.values) == ["x[0]", "x[1]"]
    assert np.all(rhat.values < 1.005)
    assert np.all(np.abs(ess.values / (CHAINS * DRAWS) - 1) < 0.15)
    np.testing.assert_allclose(rhat.values, dg.split_rhat(draws), rtol=1e-10)
    np.testing.assert_allclose(ess.values, dg.bulk_ess(draws), rtol=1e-10)
    summary = arviz_stats.summary(tree, kind="diagnostics")
    assert list(summary.index) == ["theta[x[0]]", "theta[x[1]]"]


def test_arviz_rhat_flags_a_shifted_chain(tmp_path):
    """One chain of four shifted by 2 posterior sds: the between-chain variance of the 8
    half-chain means is ≈ 2²·(2/8)(6/8)·8/7 ≈ 0.86 within-chain variances, so R̂ ≈ √1.86 ≈ 1.36
    (measured 1.31–1.36 over five seeds); > 1.2 is well above the 1.01 gate."""
    draws = _banana_draws()
    draws[0] += 2 * draws.reshape(-1, draws.shape[-1]).std(axis=0)
    tree = xr.open_datatree(_write_reference(tmp_path / "r.zarr", draws), engine="zarr")
    assert np.all(arviz_stats.rhat(tree)["theta"].values > 1.2)


def test_sampler_statistics_are_an_arviz_sample_stats_group(tmp_path):
    """Statistics keep ArviZ's names and types in a sample_stats group, and the flat read
    shows them as before; ArviZ's E-BFMI of the stored energy is the gate's, per chain, up to
    the normalisation of its numerator."""
    rng = np.random.default_rng(1)
    stats = {
        "diverging": np.zeros((CHAINS, DRAWS)),
        "tree_depth": np.full((CHAINS, DRAWS), 3.0),
        "energy": rng.normal(size=(CHAINS, DRAWS)).cumsum(axis=1),
    }
    path = _write_reference(tmp_path / "r.zarr", _banana_draws(), stats)
    tree = xr.open_datatree(path, engine="zarr")
    assert set(tree.children) == {"posterior", "sample_stats"}
    sample_stats = tree["sample_stats"]
    assert {name: str(var.dtype) for name, var in sample_stats.data_vars.items()} == {
        "diverging": "bool",
        "tree_depth": "int64",
        "energy": "float64",
    }
    # ArviZ divides the N − 1 squared energy differences by N, the gate (as Stan) by N − 1.
    np.testing.assert_allclose(
        arviz_stats.bfmi(tree)["energy"].values,
        dg.ebfmi(stats["energy"]) * (DRAWS - 1) / DRAWS,
        rtol=1e-12,
    )
    back = artifacts.read(path, artifacts.REFERENCE_DRAWS)
    assert back.draws.dims == ("chain", "draw", "param") and back.draws.shape == (4, 1000, 2)
    assert back.energy.dims == ("chain", "draw")
    np.testing.assert_array_equal(back.energy.values, stats["energy"])


def test_the_reference_step_writes_an_arviz_posterior(tmp_path):
    """The exact engine's store: one chain, the target's parameter names, no sample_stats."""
    out = reference("banana", tmp_path / "r.zarr", "exact", {"num_draws": 500})
    tree = xr.open_datatree(out, engine="zarr")
    assert set(tree.children) == {"posterior"}
    theta = tree["posterior"]["theta"]
    assert theta.dims == ("chain", "draw", "param") and theta.shape == (1, 500, 2)
    assert list(theta.param.values) == make_target("banana", {}).param_names()
    flat = artifacts.read(out, artifacts.REFERENCE_DRAWS)
    np.testing.assert_array_equal(flat.draws.values, theta.values)


@pytest.mark.parametrize("array", ["posterior/theta", "sample_stats/energy"])
@pytest.mark.parametrize("damage", ["delete", "flip"])
def test_a_damaged_chunk_in_a_group_names_store_and_array(tmp_path, array, damage):
    stats = {"energy": np.ones((CHAINS, DRAWS))}
    path = _write_reference(tmp_path / "r.zarr", _banana_draws(), stats)
    chunk = next(p for p in (path / array).rglob("*") if p.is_file() and p.name != "zarr.json")
    if damage == "delete":
        chunk.unlink()
    else:
        data = bytearray(chunk.read_bytes())
        data[-1] ^= 0xFF
        chunk.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"ReferenceDraws store {path}: array '{array}'"):
        artifacts.read(path, artifacts.REFERENCE_DRAWS)


def _write_flat_layout(ds: xr.Dataset, path, kind: str) -> None:
    """A complete store as versions before the ArviZ layout wrote it: the dataset flat in the
    root group."""
    ds = ds.assign_coords(param=np.asarray(ds.param.values, dtype=np.dtypes.StringDType()))
    ds = ds.assign_attrs(kind=kind, checksums="{}", artifact_complete=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is a zarr-python v3 extension
        ds.to_zarr(path, zarr_format=3, consolidated=True)


def test_a_store_in_the_old_flat_layout_fails_saying_to_recompute(tmp_path, sample_set_ds):
    reference_ds = artifacts.reference_draws(_banana_draws(), ["x[0]", "x[1]"])
    for ds, schema in (
        (reference_ds, artifacts.REFERENCE_DRAWS),
        (sample_set_ds, artifacts.SAMPLE_SET),
    ):
        path = tmp_path / f"{schema.kind}.zarr"
        _write_flat_layout(ds, path, schema.kind)
        with pytest.raises(
            ArtifactError, match=rf"{schema.kind} store {path}: no 'posterior' group.*recompute"
        ):
            artifacts.read(path, schema)
