"""Typed artifacts: schema validation on write and read, portable stores, atomic writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import xarray as xr
from metric_fixtures import metric_set

from sivi_engine import artifacts
from sivi_engine.artifacts import ArtifactError


def test_round_trip_preserves_values_and_attrs(tmp_path, sample_set_ds):
    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    back = artifacts.read(path, artifacts.SAMPLE_SET)
    np.testing.assert_array_equal(back.samples.values, sample_set_ds.samples.values)
    assert list(back.param.values) == ["x[0]", "x[1]"]
    assert back.attrs["code_hash"] == "abc" and back.attrs["kind"] == "SampleSet"


def test_plain_xarray_opens_a_store_warning_free(tmp_path, sample_set_ds):
    """Stores are Zarr v3 with a spec'd string type: plain xarray opens the tree, and each of
    its groups alone, with the parameter names and no warning."""
    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(path, engine="zarr")
        posterior = xr.open_zarr(path, group="posterior")
        training = xr.open_zarr(path, group="training")
    assert tree["posterior"]["theta"].dims == ("chain", "draw", "param")
    assert tree["posterior"]["theta"].shape == (1, 50, 2)
    np.testing.assert_array_equal(posterior.theta.values[0], sample_set_ds.samples.values)
    assert list(posterior.param.values) == list(training.param.values) == ["x[0]", "x[1]"]
    assert training.checkpoint_samples.shape == (3, 10, 2)
    assert (path / "zarr.json").read_text().count('"zarr_format": 3') >= 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda ds: ds.drop_vars("loss"), "'loss'"),
        (lambda ds: ds.assign(samples=ds.samples.astype("float32")), "dtype float32"),
        (lambda ds: ds.drop_attrs().assign_attrs(method="ksivi"), "'label'"),
        (lambda ds: ds.rename({"param": "coord"}), "dims"),
        (
            lambda ds: ds.assign(checkpoint_iteration=ds.checkpoint_iteration.astype("float64")),
            "'checkpoint_iteration' has dtype float64",
        ),
        (
            lambda ds: ds.drop_attrs().assign_attrs(
                {k: v for k, v in ds.attrs.items() if k != "stopped_on_budget"}
            ),
            "'stopped_on_budget'",
        ),
    ],
)
def test_write_rejects_schema_violations_naming_the_field(tmp_path, sample_set_ds, mutate, field):
    out = tmp_path / "bad.zarr"
    with pytest.raises(ArtifactError, match=field) as info:
        artifacts.write(mutate(sample_set_ds), out, artifacts.SAMPLE_SET)
    assert str(out) in str(info.value)
    assert not out.exists()


def test_a_sample_set_without_checkpoints_fails_saying_to_train_again(tmp_path, sample_set_ds):
    """Stores written before checkpoints were stored are rejected with what to do about it."""
    old = sample_set_ds.drop_vars(
        ["checkpoint_samples", "checkpoint_iteration", "checkpoint_seconds"]
    )
    with pytest.raises(
        ArtifactError, match="missing variable 'checkpoint_samples'.*train the run again"
    ):
        artifacts.write(old, tmp_path / "old.zarr", artifacts.SAMPLE_SET)


def test_checkpoints_round_trip(tmp_path, sample_set_ds):
    back = artifacts.read(
        artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET),
        artifacts.SAMPLE_SET,
    )
    np.testing.assert_array_equal(
        back.checkpoint_samples.values, sample_set_ds.checkpoint_samples.values
    )
    assert back.checkpoint_iteration.values.tolist() == [1, 10, 20]
    assert back.checkpoint_samples.dims == ("checkpoint", "checkpoint_draw", "param")
    assert back.attrs["stopped_on_budget"] == 0


def test_read_rejects_a_store_of_another_kind(tmp_path, sample_set_ds):
    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    with pytest.raises(ArtifactError, match="ReferenceDraws store .*'kind' is 'SampleSet'"):
        artifacts.read(path, artifacts.REFERENCE_DRAWS)


def test_read_rejects_a_store_edited_out_of_schema(tmp_path, sample_set_ds):
    """A valid store whose metadata is damaged afterwards fails on read, naming the field."""
    import zarr

    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    group = zarr.open_group(path, mode="r+")
    del group.attrs["status"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is a zarr-python v3 extension
        zarr.consolidate_metadata(path)
    with pytest.raises(ArtifactError, match=r"s\.zarr: missing attribute 'status'"):
        artifacts.read(path, artifacts.SAMPLE_SET)


def test_read_of_something_that_is_not_a_store(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ArtifactError, match="not a Zarr v3 store"):
        artifacts.read(tmp_path / "empty.zarr", artifacts.SAMPLE_SET)


def test_failed_overwrite_keeps_the_old_store(tmp_path, sample_set_ds):
    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    with pytest.raises(ArtifactError):
        artifacts.write(sample_set_ds.drop_vars("loss"), path, artifacts.SAMPLE_SET)
    np.testing.assert_array_equal(
        artifacts.read(path, artifacts.SAMPLE_SET).samples.values, sample_set_ds.samples.values
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["s.zarr"]


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import xarray as xr
    import zarr
    from sivi_engine import artifacts

    stage = sys.argv[2]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if stage == "between-renames":
        real_replace = os.replace
        def replace(src, dst):
            if str(dst) == sys.argv[1]:  # the old store is retired, the new one not renamed in
                die()
            real_replace(src, dst)
        os.replace = replace
    elif stage == "during-data":
        real = xr.DataTree.to_zarr
        def partial(self, store, **kwargs):
            # write the metadata and half the data, then die
            real(self.isel(draw=slice(0, 10), missing_dims="ignore"), store, **kwargs)
            die()
        xr.DataTree.to_zarr = partial
    else:
        zarr.consolidate_metadata = die  # after the data, before the completion mark is sealed
    ds = artifacts.sample_set(
        np.ones((1000, 2)), ["a", "b"], step=np.array([1]), loss=np.array([0.0]),
        elapsed=np.array([0.0]), checkpoint_samples=np.ones((1, 10, 2)),
        checkpoint_iteration=np.array([1]), checkpoint_seconds=np.array([0.0]), method="m",
        label="m", target="t", target_settings="{}", seed=0, settings="{}", code_hash="h",
        device="cpu", wall_seconds=0.0, iterations=1, status="ok", stopped_on_budget=0,
        checkpoint_overhead_seconds=0.0, diagnostics="{}", diagnostics_metadata="{}",
        versions="{}", created="now",
    )
    artifacts.write(ds, sys.argv[1], artifacts.SAMPLE_SET)
    """
)


@pytest.mark.parametrize("stage", ["during-data", "before-rename"])
def test_job_killed_mid_write_leaves_no_store_that_validates(tmp_path, stage):
    out = tmp_path / "samples.zarr"
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(out), stage], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not out.exists()
    (staging,) = [p for p in tmp_path.iterdir() if p.is_dir()]  # the hidden partial store
    assert staging.name.startswith(".samples.zarr.tmp-")
    with pytest.raises(ArtifactError):
        artifacts.read(staging, artifacts.SAMPLE_SET)


def _stores(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_overwrite_killed_between_its_renames_leaves_a_valid_store(tmp_path, sample_set_ds):
    """The old store is retired, the new one not yet in place, the writer SIGKILLed: the next
    read puts the old store back, and the next write removes the dead writer's staging."""
    out = tmp_path / "samples.zarr"
    artifacts.write(sample_set_ds, out, artifacts.SAMPLE_SET)
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(out), "between-renames"], capture_output=True
    )
    assert proc.returncode == -9, proc.stderr.decode()
    assert not out.exists() and len(_stores(tmp_path)) == 2  # retired and staged
    back = artifacts.read(out, artifacts.SAMPLE_SET)
    np.testing.assert_array_equal(back.samples.values, sample_set_ds.samples.values)
    artifacts.write(sample_set_ds, out, artifacts.SAMPLE_SET)
    assert _stores(tmp_path) == ["samples.zarr"]  # the dead writer's staging is gone


def test_a_later_write_removes_the_staging_of_a_killed_writer(tmp_path, sample_set_ds):
    out = tmp_path / "samples.zarr"
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(out), "during-data"])
    assert proc.returncode == -9
    artifacts.write(sample_set_ds, out, artifacts.SAMPLE_SET)
    assert _stores(tmp_path) == ["samples.zarr"]


CONCURRENT_SCRIPT = textwrap.dedent(
    """
    import sys
    from sivi_engine import artifacts, metric_catalogue
    from sivi_engine.metric_metadata import Catalogue

    describe = metric_catalogue.describer(Catalogue(), Catalogue())
    for round in range(3):
        value = float(sys.argv[2]) + round / 10
        ds = artifacts.metric_set(
            {"mmd2": value}, "banana", "k", 0, describe=describe, created="c", versions="{}"
        )
        artifacts.write(ds, sys.argv[1], artifacts.METRIC_SET)
    """
)


def test_concurrent_writers_to_one_path_leave_one_valid_store(tmp_path):
    """Four processes overwrite one store three times each, at once: none fails, and the path
    holds one writer's last store, valid, with nothing left beside it."""
    out = tmp_path / "m.zarr"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(out), str(i)], stderr=subprocess.PIPE
        )
        for i in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    value = artifacts.read(out, artifacts.METRIC_SET).mmd2.item()
    assert value in {i + 0.2 for i in range(4)}  # some writer's last round
    assert _stores(tmp_path) == ["m.zarr"]


def test_metric_sets_combine_with_nan_for_missing_metrics():
    a = metric_set(
        {"kl_qp_knn": 1.0, "mmd2": 2.0}, "banana", "ksivi_v", 0, created="c", versions="{}"
    )
    b = metric_set({"kl_qp_knn": 3.0}, "gmm1d", "ksivi_v", 1, created="c", versions="{}")
    table = artifacts.combine_metric_sets([a, b], created="c", versions="{}")
    artifacts.validate(table.assign_attrs(kind="MetricSet"), artifacts.METRIC_SET)
    assert table.kl_qp_knn.sel(target="gmm1d", seed=1).item() == 3.0
    assert np.isnan(table.mmd2.sel(target="gmm1d", seed=1).item())


def _chunks(store, array: str) -> list:
    return sorted(p for p in (store / array).rglob("*") if p.is_file() and p.name != "zarr.json")


@pytest.mark.parametrize("array", ["posterior/theta", "training/checkpoint_samples"])
@pytest.mark.parametrize("damage", ["delete", "truncate", "flip"])
def test_a_damaged_chunk_is_an_error_naming_store_and_array(
    tmp_path, sample_set_ds, array, damage
) -> None:
    """Zarr fills a missing chunk with the fill value and reads an altered one as data: the
    checksums recorded at write time catch both, and a truncated chunk is named, not a codec
    traceback."""
    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    chunk = _chunks(path, array)[0]
    if damage == "delete":
        chunk.unlink()
    elif damage == "truncate":
        chunk.write_bytes(chunk.read_bytes()[: len(chunk.read_bytes()) // 2])
    else:
        data = bytearray(chunk.read_bytes())
        data[-1] ^= 0xFF
        chunk.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"SampleSet store {path}: array '{array}'"):
        artifacts.read(path, artifacts.SAMPLE_SET)


def test_evaluate_refuses_a_damaged_sample_set_instead_of_calling_it_diverged(
    tmp_path, sample_set_ds
) -> None:
    """The CLI exits with the named error before scoring; no MetricSet is written."""
    path = artifacts.write(sample_set_ds, tmp_path / "s.zarr", artifacts.SAMPLE_SET)
    _chunks(path, "posterior/theta")[0].unlink()
    out = tmp_path / "m.zarr"
    proc = subprocess.run(
        [sys.executable, "-m", "sivi_engine", "evaluate", "--samples", str(path),
         "--reference", str(tmp_path / "absent.zarr"), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0
    assert f"SampleSet store {path}: array 'posterior/theta'" in proc.stderr
    assert "Traceback" not in proc.stderr and "diverged" not in proc.stderr
    assert not out.exists()
