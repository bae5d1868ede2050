"""Typed artifacts: xarray Datasets in Zarr v3 stores with declared schemas.

Four artifact kinds flow through the benchmark (docs/architecture.md#data-flow):

- ``TargetDescription``: what the report shows of a target itself (its declared capabilities,
  its density on a grid for d ≤ 2, the true path of a path-valued target; see
  :func:`target_description`),
- ``ReferenceDraws``: ``draws(chain, draw, param)`` from a reference engine, with the sampler's
  per-transition statistics (see :func:`reference_draws`),
- ``SampleSet``: ``samples(draw, param)`` from a trained method plus its training trace and
  the draws at its training checkpoints (see :func:`sample_set`),
- ``MetricSet``: scalar metrics on dims ``(target, method, seed)``, the metrics of each
  training checkpoint as curves ``curve_<metric>`` on dims ``(target, method, seed, checkpoint)``,
  and a classifier's reliability curve ``reliability_<name>`` on dims
  ``(target, method, seed, calibration_bin)``.

Every store is validated when written and when read. Writes are atomic: the store is written
to a hidden sibling, marked complete, and renamed into place, so a killed job never leaves a
store at the destination, and a partial store elsewhere fails validation. Every array's SHA-256
is recorded at write time (attribute ``checksums``) and checked on read, so a deleted, truncated
or altered chunk is an :class:`ArtifactError` naming the store and the array.

Layout on disk. TargetDescription and MetricSet stores are flat: the dataset's arrays in the
root group. ReferenceDraws and SampleSet stores are ArviZ-readable trees whose root group holds
the attributes only (:class:`PosteriorLayout`):

- ``posterior/theta(chain, draw, param)``: the draws, one variable for the target's parameter
  vector, ``param`` a string coordinate holding the target's parameter names (``beta[0]``,
  ``W1[0,3]``, ...). One vector variable rather than one variable per parameter: a 751-weight
  BNN would otherwise be 751 arrays, and the names, which index a flattened vector, read
  the same either way (``theta[beta[0]]`` in an ArviZ summary). A SampleSet's draws are one
  chain (``chain`` of length 1);
- ``sample_stats/<name>(chain, draw)`` (ReferenceDraws, when the engine records any): the
  sampler's statistics under ArviZ's names (Stan's: ``diverging``, ``energy``, ``lp``,
  ``tree_depth``, ``n_steps``, ``step_size``, ``acceptance_rate``);
- ``training/`` (SampleSet): the training trace and the checkpoint variables.

Every group holds its own coordinates, so each opens alone too. ArviZ reads a store as it is::

    arviz_stats.summary(xarray.open_datatree("results/reference/banana.zarr", engine="zarr"))

:func:`read` presents such a store flat, as the pipeline's readers use it (``draws`` or
``samples`` beside the other variables); a store in the flat layout of earlier versions is an
:class:`ArtifactError` saying to recompute it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

COMPLETE_ATTR = "artifact_complete"
CHECKSUMS_ATTR = "checksums"


class ArtifactError(ValueError):
    """A store that does not satisfy its schema; the message names the store and the field."""


@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """A variable's dims and dtype; ``hint`` is added to the error when it is missing."""

    dims: tuple[str, ...]
    dtype: str
    hint: str = ""


#: The posterior group and its one variable, the target's parameter vector (module docstring).
POSTERIOR, POSTERIOR_VARIABLE = "posterior", "theta"


@dataclasses.dataclass(frozen=True)
class PosteriorLayout:
    """How a flat dataset is stored as an ArviZ tree: its variable ``draws`` (dims
    ``(chain, draw, param)``, or ``(draw, param)`` when not ``has_chains``: one chain) is
    ``posterior/theta``, and all its other variables are in group ``rest``."""

    draws: str
    has_chains: bool
    rest: str


@dataclasses.dataclass(frozen=True)
class ArtifactSchema:
    """Declared content of one artifact kind.

    ``variables`` must all be present with exactly these dims and dtypes, and
    ``optional_variables`` may be; a further variable whose name starts with a key of
    ``prefixed_variables`` must have that key's spec (MetricSet curves); when
    ``extra_variables`` is set, any other variable must have that spec (MetricSet metrics).
    ``layout``: how the store is an ArviZ tree on disk (None: a flat store); the schema
    describes the flat dataset either way. Every variable carries the attributes
    ``variable_attrs``.
    """

    kind: str
    variables: Mapping[str, VariableSpec]
    string_coords: tuple[str, ...]
    required_attrs: tuple[str, ...]
    extra_variables: VariableSpec | None = None
    prefixed_variables: Mapping[str, VariableSpec] = dataclasses.field(default_factory=dict)
    optional_variables: Mapping[str, VariableSpec] = dataclasses.field(default_factory=dict)
    #: Attributes every variable must carry (a MetricSet's metric metadata).
    variable_attrs: tuple[str, ...] = ()
    layout: PosteriorLayout | None = None

    def spec_of(self, name: str) -> VariableSpec | None:
        """The spec a variable that is not in ``variables`` must satisfy (None: not allowed)."""
        if name in self.optional_variables:
            return self.optional_variables[name]
        for prefix, spec in self.prefixed_variables.items():
            if name.startswith(prefix):
                return spec
        return self.extra_variables


TARGET_DESCRIPTION = ArtifactSchema(
    kind="TargetDescription",
    variables={},
    string_coords=("param",),
    required_attrs=(
        "target",
        "target_settings",
        "target_hash",
        "capabilities",
        "dim",
        "versions",
        "created",
    ),
    optional_variables={
        "density_1d": VariableSpec(("grid_x",), "float64"),
        "density_2d": VariableSpec(("grid_y", "grid_x"), "float64"),
        "path_time": VariableSpec(("path_point",), "float64"),
        "true_path": VariableSpec(("path_point",), "float64"),
        "observation_time": VariableSpec(("observation",), "float64"),
        "observation": VariableSpec(("observation",), "float64"),
    },
)

#: Sampler statistics (ArviZ's names) that ArviZ types as flags or counts; any other is float64.
SAMPLE_STAT_DTYPES = {"diverging": "bool", "tree_depth": "int64", "n_steps": "int64"}

REFERENCE_DRAWS = ArtifactSchema(
    kind="ReferenceDraws",
    variables={"draws": VariableSpec(("chain", "draw", "param"), "float64")},
    string_coords=("param",),
    required_attrs=(
        "target",
        "target_settings",
        "target_hash",
        "engine",
        "engine_settings",
        "seed",
        "diagnostics",
        "wall_seconds",
        "versions",
        "created",
    ),
    optional_variables={
        name: VariableSpec(("chain", "draw"), dtype) for name, dtype in SAMPLE_STAT_DTYPES.items()
    },
    extra_variables=VariableSpec(("chain", "draw"), "float64"),  # other sampler statistics
    layout=PosteriorLayout(draws="draws", has_chains=True, rest="sample_stats"),
)

#: Prefix of the SampleSet variables holding a method's own diagnostics at each checkpoint.
CHECKPOINT_DIAGNOSTIC_PREFIX = "checkpoint_diagnostic_"

#: Why a SampleSet can lack its checkpoints, and what to do.
_NO_CHECKPOINTS = " (a store written before training stored checkpoints: train the run again)"

SAMPLE_SET = ArtifactSchema(
    kind="SampleSet",
    variables={
        "samples": VariableSpec(("draw", "param"), "float64"),
        "loss": VariableSpec(("step",), "float64"),
        "elapsed": VariableSpec(("step",), "float64"),
        "checkpoint_samples": VariableSpec(
            ("checkpoint", "checkpoint_draw", "param"), "float64", _NO_CHECKPOINTS
        ),
        "checkpoint_iteration": VariableSpec(("checkpoint",), "int64", _NO_CHECKPOINTS),
        "checkpoint_seconds": VariableSpec(("checkpoint",), "float64", _NO_CHECKPOINTS),
    },
    string_coords=("param",),
    prefixed_variables={CHECKPOINT_DIAGNOSTIC_PREFIX: VariableSpec(("checkpoint",), "float64")},
    required_attrs=(
        "method",
        "label",
        "target",
        "target_settings",
        "seed",
        "settings",
        "code_hash",
        "device",
        "wall_seconds",
        "iterations",
        "status",
        "diagnostics",
        "diagnostics_metadata",
        "versions",
        "created",
        "stopped_on_budget",
        "checkpoint_overhead_seconds",
    ),
    layout=PosteriorLayout(draws="samples", has_chains=False, rest="training"),
)

#: Prefix of the MetricSet variables that hold a metric at every training checkpoint.
CURVE_PREFIX = "curve_"
#: Prefix of the MetricSet variables that hold the reference's own noise floor of a metric
#: (:func:`sivi_engine.metrics.curves.noise_floor`), on the metrics' dims.
FLOOR_PREFIX = "floor_"
#: Prefix of the MetricSet variables that hold a classifier's reliability curve, one value per
#: calibration bin (:func:`sivi_engine.metrics.reliability_curves`).
RELIABILITY_PREFIX = "reliability_"
#: Prefix of the MetricSet variables that hold the pairwise correlations behind the ``corr_``
#: metrics, q's and the reference's, one value per pair
#: (:func:`sivi_engine.metrics.correlation_pairs`).
PAIR_PREFIX = "pair_"

METRIC_SET = ArtifactSchema(
    kind="MetricSet",
    variables={},
    string_coords=("target", "method"),
    required_attrs=("created", "versions"),
    extra_variables=VariableSpec(("target", "method", "seed"), "float64"),
    prefixed_variables={
        CURVE_PREFIX: VariableSpec(("target", "method", "seed", "checkpoint"), "float64"),
        RELIABILITY_PREFIX: VariableSpec(
            ("target", "method", "seed", "calibration_bin"), "float64"
        ),
        PAIR_PREFIX: VariableSpec(("target", "method", "seed", "pair"), "float64"),
    },
    # what each metric means, which way is better, its kind and unit, as the code that
    # computes it declares (sivi_engine.metric_catalogue); the report reads nothing else
    variable_attrs=(
        "description",
        "better",
        "hint",
        "kind",
        "unit",
        "bound",
        "legend_rank",
        "roles",
        "title",
    ),
)

SCHEMAS = {
    schema.kind: schema for schema in (TARGET_DESCRIPTION, REFERENCE_DRAWS, SAMPLE_SET, METRIC_SET)
}


def _fail(where: str, schema: ArtifactSchema, message: str) -> None:
    raise ArtifactError(f"{schema.kind} store {where}: {message}")


def _check_kind(attrs: Mapping[str, Any], schema: ArtifactSchema, where: str) -> None:
    if attrs.get("kind") != schema.kind:
        _fail(where, schema, f"attribute 'kind' is {attrs.get('kind')!r}, expected {schema.kind!r}")


def validate(ds: xr.Dataset, schema: ArtifactSchema, where: str = "<memory>") -> None:
    """Raise :class:`ArtifactError` unless ``ds`` satisfies ``schema``."""
    _check_kind(ds.attrs, schema, where)
    for name, spec in schema.variables.items():
        if name not in ds.data_vars:
            _fail(where, schema, f"missing variable {name!r}{spec.hint}")
        _check_variable(ds, name, spec, schema, where)
    for name in set(ds.data_vars) - set(schema.variables):
        spec = schema.spec_of(name)
        if spec is None:
            _fail(where, schema, f"unexpected variable {name!r}")
        _check_variable(ds, name, spec, schema, where)
    for name in schema.string_coords:
        if name not in ds.coords:
            _fail(where, schema, f"missing coordinate {name!r}")
        if ds[name].dtype.kind not in "OUT":
            _fail(
                where, schema, f"coordinate {name!r} has dtype {ds[name].dtype}, expected strings"
            )
    for name in schema.required_attrs:
        if name not in ds.attrs:
            _fail(where, schema, f"missing attribute {name!r}")


def _check_variable(
    ds: xr.Dataset, name: str, spec: VariableSpec, schema: ArtifactSchema, where: str
) -> None:
    var = ds[name]
    if var.dims != spec.dims:
        _fail(where, schema, f"variable {name!r} has dims {var.dims}, expected {spec.dims}")
    if var.dtype != np.dtype(spec.dtype):
        _fail(where, schema, f"variable {name!r} has dtype {var.dtype}, expected {spec.dtype}")
    missing = [attr for attr in schema.variable_attrs if attr not in var.attrs]
    if missing:
        _fail(
            where,
            schema,
            f"variable {name!r} lacks the attribute(s) {missing} (a store written before metrics "
            "carried their metadata: evaluate the run again)",
        )


def _portable_strings(ds: xr.Dataset, names: Sequence[str]) -> xr.Dataset:
    """Store string coordinates with numpy's variable-length StringDType (Zarr v3 'string')."""
    return ds.assign_coords(
        {name: np.asarray(ds[name].values, dtype=np.dtypes.StringDType()) for name in names}
    )


def _array_bytes(values: np.ndarray) -> bytes:
    """The bytes an array's checksum is taken of: strings joined by NUL, numbers little-endian."""
    if values.dtype.kind in "OUT":
        return "\0".join(str(v) for v in values.ravel()).encode("utf-8")
    values = np.ascontiguousarray(values)
    return values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def _array_path(group: str, name: Any) -> str:
    """An array's name relative to the root: ``samples`` in the root, ``posterior/theta``."""
    return f"{group}/{name}".lstrip("/")


def checksums(tree: xr.DataTree) -> dict[str, str]:
    """SHA-256 (hex) of every data variable and coordinate of every group of ``tree``, by
    :func:`_array_path`."""
    return {
        _array_path(node.path, name): hashlib.sha256(
            _array_bytes(np.asarray(var.values))
        ).hexdigest()
        for node in tree.subtree
        for name, var in sorted(node.to_dataset(inherit=False).variables.items())
    }


def _stored_tree(ds: xr.Dataset, layout: PosteriorLayout | None) -> xr.DataTree:
    """The tree a (validated) flat dataset is stored as: the dataset itself in the root, or the
    ArviZ groups of ``layout`` (module docstring) under a root holding the attributes."""
    if layout is None:
        return xr.DataTree(ds)
    draws = ds[layout.draws] if layout.has_chains else ds[layout.draws].expand_dims(chain=[0])
    groups = {"/": xr.Dataset(attrs=ds.attrs), POSTERIOR: draws.to_dataset(name=POSTERIOR_VARIABLE)}
    rest = ds.drop_vars(layout.draws).drop_attrs()
    if rest.data_vars:
        used = {dim for var in rest.data_vars.values() for dim in var.dims}
        groups[layout.rest] = rest.drop_vars([c for c in rest.coords if c not in used])
    return xr.DataTree.from_dict(groups)


def _flat_dataset(tree: xr.DataTree, schema: ArtifactSchema, where: str) -> xr.Dataset:
    """The flat dataset a stored tree holds (inverse of :func:`_stored_tree`)."""
    layout = schema.layout
    if layout is None:
        return tree.to_dataset()
    posterior = tree[POSTERIOR].to_dataset(inherit=False)
    if list(posterior.data_vars) != [POSTERIOR_VARIABLE]:
        _fail(
            where,
            schema,
            f"group {POSTERIOR!r} holds {sorted(map(str, posterior.data_vars))}, "
            f"expected only {POSTERIOR_VARIABLE!r}",
        )
    draws = posterior[POSTERIOR_VARIABLE]
    if not layout.has_chains and draws.sizes.get("chain") == 1:
        draws = draws.isel(chain=0, drop=True)
    groups = [draws.to_dataset(name=layout.draws)]
    if layout.rest in tree.children:
        groups.append(tree[layout.rest].to_dataset(inherit=False))
    merged = xr.merge(groups, join="exact", compat="equals", combine_attrs="drop")
    return merged.assign_attrs(tree.attrs)


def _loaded_group(ds: xr.Dataset, group: str, schema: ArtifactSchema, where: str) -> xr.Dataset:
    """``ds`` with every array loaded; one that cannot be decoded is an :class:`ArtifactError`
    naming it."""
    for name, variable in ds.variables.items():
        try:
            variable.load()
        except Exception as err:  # a codec's or the store's error, whatever its type
            array = _array_path(group, name)
            _fail(where, schema, f"array {array!r} cannot be read ({type(err).__name__}: {err})")
    return ds


def _load_and_verify(tree: xr.DataTree, schema: ArtifactSchema, where: str) -> xr.DataTree:
    """Load every array of every group of ``tree`` and compare it with the checksum recorded
    at write time; an array that cannot be decoded or does not match is an
    :class:`ArtifactError` naming it."""
    if CHECKSUMS_ATTR not in tree.attrs:
        _fail(
            where, schema, f"no {CHECKSUMS_ATTR!r} attribute (written by an older version: rerun)"
        )
    recorded = json.loads(tree.attrs[CHECKSUMS_ATTR])
    loaded = xr.DataTree.from_dict(
        {
            node.path: _loaded_group(node.to_dataset(inherit=False), node.path, schema, where)
            for node in tree.subtree
        }
    )
    del loaded.attrs[CHECKSUMS_ATTR]
    actual = checksums(loaded)
    if actual.keys() != recorded.keys():
        _fail(
            where, schema, f"arrays {sorted(actual)} differ from those written {sorted(recorded)}"
        )
    for name, digest in actual.items():
        if digest != recorded[name]:
            _fail(where, schema, f"array {name!r} differs from what was written (damaged chunk)")
    return loaded


def write(ds: xr.Dataset, path: str | os.PathLike[str], schema: ArtifactSchema) -> Path:
    """Validate ``ds`` and write it atomically to the Zarr v3 store ``path`` (as the ArviZ tree
    of ``schema.layout``, if any), with every array's checksum.

    The store is written to a hidden staging sibling (its writer holds a lock on it, so stale
    staging folders of killed writers can be told from live ones), then swapped in under an
    exclusive lock on the path (:func:`_replace`): concurrent writers to one path each leave a
    complete store there, the last one wins, and a kill at any point leaves the old or the new
    store at the path, or a retired one that the next read or write puts back.
    """
    path = Path(path)
    ds = ds.assign_attrs(kind=schema.kind)
    validate(ds, schema, str(path))
    tree = _stored_tree(_portable_strings(ds, schema.string_coords), schema.layout)
    tree.attrs[CHECKSUMS_ATTR] = json_attr(checksums(tree))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}{STAGING}{uuid.uuid4().hex}")
    with _locked(_lock_of(staging)):
        try:
            tree.to_zarr(staging, mode="w-", zarr_format=3, consolidated=False)
            zarr.open_group(staging, mode="r+").attrs[COMPLETE_ATTR] = True
            with warnings.catch_warnings():
                # Consolidated metadata is a zarr-python extension to v3; it lets plain
                # xarray.open_zarr read the store without a fallback warning.
                warnings.filterwarnings(
                    "ignore", message="Consolidated metadata is currently not part"
                )
                zarr.consolidate_metadata(staging)
            with _locked(_lock_of(path)):
                _recover(path)
                _replace(staging, path)
                _remove_stale(path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            _lock_of(staging).unlink(missing_ok=True)
    return path


#: Name parts of a store's hidden siblings: a staging store being written, a store retired by an
#: overwrite (removed once the new one is in place).
STAGING, RETIRED = ".tmp-", ".old-"


def _lock_of(path: Path) -> Path:
    """The lock file of a store or staging folder: a hidden sibling (left in place: removing a
    lock file others may be waiting on would let two holders in)."""
    return path.with_name(f".{path.name.lstrip('.')}.lock")


@contextlib.contextmanager
def _locked(lock: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock`` (created if absent) for the block; yields
    whether it was acquired (always, when ``blocking``). The kernel releases it when its holder
    dies, killed or not."""
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _siblings(path: Path, kind: str) -> list[Path]:
    return sorted(
        p
        for p in path.parent.glob(f".{path.name}{kind}*")
        if p.is_dir()  # not the lock files
    )


def _replace(staging: Path, path: Path) -> None:
    """Rename ``staging`` to ``path`` (the caller holds the path's lock); an existing store is
    retired first and removed once the new one is in place."""
    if not path.exists():
        os.replace(staging, path)
        return
    retired = path.with_name(f".{path.name}{RETIRED}{uuid.uuid4().hex}")
    os.replace(path, retired)
    os.replace(staging, path)
    shutil.rmtree(retired, ignore_errors=True)


def _recover(path: Path) -> None:
    """With the path's lock held: when no store is at ``path`` but an overwrite was cut
    between retiring the old store and renaming the new one in, put the retired store back."""
    retired = _siblings(path, RETIRED)
    if not path.exists() and retired:
        os.replace(retired[-1], path)


def _remove_stale(path: Path) -> None:
    """With the path's lock held: remove retired stores and the staging folders of writers that
    died (whose lock is free)."""
    for retired in _siblings(path, RETIRED):
        shutil.rmtree(retired, ignore_errors=True)
    for staging in _siblings(path, STAGING):
        with _locked(_lock_of(staging), blocking=False) as free:
            if free:
                shutil.rmtree(staging, ignore_errors=True)
        if free:
            _lock_of(staging).unlink(missing_ok=True)


#: Why a ReferenceDraws or SampleSet store lacks its posterior group, and what to do.
_STALE_LAYOUT = (
    f"no {POSTERIOR!r} group: a store in the flat layout written before stores were ArviZ "
    "posteriors; recompute it (delete it and rerun its step)"
)


def read(path: str | os.PathLike[str], schema: ArtifactSchema) -> xr.Dataset:
    """Open, load, checksum and validate a store, and return its flat dataset (a tree store's
    draws as ``draws`` or ``samples`` beside its other variables); raise :class:`ArtifactError`
    naming what is wrong. A store whose overwrite was killed half-way is put back first
    (:func:`_recover`)."""
    path = Path(path)
    if not path.exists() and _siblings(path, RETIRED):
        with _locked(_lock_of(path)):
            _recover(path)
    if not (path / "zarr.json").is_file():
        raise ArtifactError(f"{schema.kind} store {path}: not a Zarr v3 store (no zarr.json)")
    try:
        tree = xr.open_datatree(path, engine="zarr", consolidated=True)
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise ArtifactError(f"{schema.kind} store {path}: unreadable ({err})") from err
    if tree.attrs.get(COMPLETE_ATTR) is not True:
        raise ArtifactError(
            f"{schema.kind} store {path}: incomplete write (no {COMPLETE_ATTR!r} mark)"
        )
    del tree.attrs[COMPLETE_ATTR]
    _check_kind(tree.attrs, schema, str(path))
    if schema.layout is not None and POSTERIOR not in tree.children:
        _fail(str(path), schema, _STALE_LAYOUT)
    ds = _flat_dataset(_load_and_verify(tree, schema, str(path)), schema, str(path))
    validate(ds, schema, str(path))
    return ds


def read_attrs(path: str | os.PathLike[str], schema: ArtifactSchema) -> dict[str, Any]:
    """The attributes of a complete store of kind ``schema``, its arrays left unread (to index
    stores that :func:`read` loads and checks in full where their data are used)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise ArtifactError(f"{schema.kind} store {path}: not a Zarr v3 store (no zarr.json)")
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    if attrs.get(COMPLETE_ATTR) is not True:
        raise ArtifactError(
            f"{schema.kind} store {path}: incomplete write (no {COMPLETE_ATTR!r} mark)"
        )
    _check_kind(attrs, schema, str(path))
    return attrs


def target_label(attrs: Mapping[str, Any]) -> str:
    """The target label a store is keyed by: its ``target_label`` attribute (the config's name
    of the target variant, e.g. ``yacht_split3``), or the registered ``target`` for a store
    written without one."""
    return str(attrs.get("target_label", attrs["target"]))


def json_attr(value: Any) -> str:
    """Canonical JSON for nested provenance attributes (settings, diagnostics, versions)."""
    return json.dumps(value, sort_keys=True, default=float)


def target_description(
    param_names: Sequence[str],
    *,
    density: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    path: Mapping[str, np.ndarray] | None = None,
    **attrs: Any,
) -> xr.Dataset:
    """A TargetDescription dataset.

    - ``density``: grid axes (x, or x and y) and the target density on them (shape (x,) or
      (y, x)), stored as ``density_1d(grid_x)`` or ``density_2d(grid_y, grid_x)``;
    - ``path``: ``path_time``, ``true_path`` (on ``path_point``), ``observation_time`` and
      ``observation`` (on ``observation``) of a path-valued target.
    """
    variables: dict[str, Any] = {}
    coords: dict[str, Any] = {"param": list(param_names)}
    if density is not None:
        axes, values = density
        names = ("grid_x", "grid_y")[: len(axes)]
        coords |= {name: np.asarray(axis, dtype=np.float64) for name, axis in zip(names, axes)}
        variables[f"density_{len(axes)}d"] = (names[::-1], np.asarray(values, dtype=np.float64))
    for name, values in (path or {}).items():
        dim = "observation" if name.startswith("observation") else "path_point"
        variables[name] = ((dim,), np.asarray(values, dtype=np.float64))
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def reference_draws(
    draws: np.ndarray,
    param_names: Sequence[str],
    sample_stats: Mapping[str, np.ndarray] | None = None,
    **attrs: Any,
) -> xr.Dataset:
    """A ReferenceDraws dataset from an array of shape (chain, draw, param), with the sampler's
    per-transition statistics beside it: each (chain, draw), named as ArviZ names them
    (``diverging``, ``lp``, ...), of their :data:`SAMPLE_STAT_DTYPES` dtype, else float64."""
    stats = {
        name: (("chain", "draw"), np.asarray(values, dtype=SAMPLE_STAT_DTYPES.get(name, "float64")))
        for name, values in (sample_stats or {}).items()
    }
    return xr.Dataset(
        {"draws": (("chain", "draw", "param"), np.asarray(draws, dtype=np.float64)), **stats},
        coords={
            "chain": np.arange(draws.shape[0]),
            "draw": np.arange(draws.shape[1]),
            "param": list(param_names),
        },
        attrs=attrs,
    )


def sample_set(
    samples: np.ndarray,
    param_names: Sequence[str],
    step: np.ndarray,
    loss: np.ndarray,
    elapsed: np.ndarray,
    *,
    checkpoint_samples: np.ndarray,
    checkpoint_iteration: np.ndarray,
    checkpoint_seconds: np.ndarray,
    checkpoint_diagnostics: Mapping[str, np.ndarray] | None = None,
    **attrs: Any,
) -> xr.Dataset:
    """A SampleSet dataset.

    - ``samples(draw, param)``: the final draws of q;
    - ``loss(step)``, ``elapsed(step)``: the training trace, the mean loss of each block of
      steps ending at ``step`` and the training loop's seconds there;
    - ``checkpoint_samples(checkpoint, checkpoint_draw, param)``: draws of q after each of K
      checkpoint iterations ``checkpoint_iteration(checkpoint)`` (int64, increasing, the last
      the final iteration run), at ``checkpoint_seconds(checkpoint)`` seconds of the training
      loop; ``checkpoint`` is an index 0..K−1;
    - ``checkpoint_diagnostic_<name>(checkpoint)``: a method's own diagnostic of q at each
      checkpoint (``Trace.checkpoint_diagnostics``), where it records any.

    Attributes besides the provenance ones: ``iterations`` (iterations run),
    ``stopped_on_budget`` (int 1 when the loop stopped on its wall-clock budget, else 0) and
    ``checkpoint_overhead_seconds`` (seconds spent drawing checkpoints, not in the loop's time).
    """
    checkpoint_samples = np.asarray(checkpoint_samples, dtype=np.float64)
    per_checkpoint = ("checkpoint",)
    diagnostics = {
        f"{CHECKPOINT_DIAGNOSTIC_PREFIX}{name}": (per_checkpoint, np.asarray(v, dtype=np.float64))
        for name, v in (checkpoint_diagnostics or {}).items()
    }
    return xr.Dataset(
        diagnostics
        | {
            "samples": (("draw", "param"), np.asarray(samples, dtype=np.float64)),
            "loss": (("step",), np.asarray(loss, dtype=np.float64)),
            "elapsed": (("step",), np.asarray(elapsed, dtype=np.float64)),
            "checkpoint_samples": (("checkpoint", "checkpoint_draw", "param"), checkpoint_samples),
            "checkpoint_iteration": (
                per_checkpoint,
                np.asarray(checkpoint_iteration, dtype=np.int64),
            ),
            "checkpoint_seconds": (
                per_checkpoint,
                np.asarray(checkpoint_seconds, dtype=np.float64),
            ),
        },
        coords={
            "draw": np.arange(samples.shape[0]),
            "param": list(param_names),
            "step": np.asarray(step, dtype=np.int64),
            "checkpoint": np.arange(checkpoint_samples.shape[0]),
            "checkpoint_draw": np.arange(checkpoint_samples.shape[1]),
        },
        attrs=attrs,
    )


#: The per-run series a MetricSet holds beside its scalars: variable prefix → the dim of its
#: points.
SERIES_DIMS = {
    CURVE_PREFIX: "checkpoint",
    RELIABILITY_PREFIX: "calibration_bin",
    PAIR_PREFIX: "pair",
}


def metric_set(
    metrics: Mapping[str, float],
    target: str,
    label: str,
    seed: int,
    /,
    curves: Mapping[str, np.ndarray] | None = None,
    reliability: Mapping[str, np.ndarray] | None = None,
    pairs: Mapping[str, np.ndarray] | None = None,
    *,
    describe: Callable[[str], Mapping[str, Any]],
    **attrs: Any,
) -> xr.Dataset:
    """A one-run MetricSet: each metric a variable on dims (target, method, seed) of length 1.

    ``curves`` maps names to K values, one per training checkpoint (``iteration``, ``seconds``
    and the metrics); each becomes ``curve_<name>`` on dims (target, method, seed, checkpoint),
    ``checkpoint`` an index 0..K−1. ``reliability`` maps names to M values, one per calibration
    bin, stored as ``reliability_<name>`` on dim ``calibration_bin``; ``pairs`` maps names to
    one value per parameter pair, stored as ``pair_<name>`` on dim ``pair``. The ``method``
    coordinate holds the config label (e.g. ``ksivi_u``); the registered method name is an
    attribute. Every variable carries its metadata, ``describe(name)``
    (:class:`sivi_engine.metric_catalogue.Describer`: description, direction, kind, unit,
    bound, legend rank, report roles).
    """
    run = ("target", "method", "seed")
    variables = {
        name: (run, np.full((1, 1, 1), value, dtype=np.float64)) for name, value in metrics.items()
    }
    coords = {"target": [target], "method": [label], "seed": [seed]}
    for prefix, series in zip(SERIES_DIMS, (curves, reliability, pairs), strict=True):
        values = {
            f"{prefix}{name}": np.asarray(points, dtype=np.float64).reshape(1, 1, 1, -1)
            for name, points in (series or {}).items()
        }
        dim = SERIES_DIMS[prefix]
        variables |= {name: ((*run, dim), points) for name, points in values.items()}
        if values:
            coords[dim] = np.arange(next(iter(values.values())).shape[-1])
    ds = xr.Dataset(variables, coords=coords, attrs=attrs)
    for name in ds.data_vars:
        ds[name].attrs.update(describe(str(name)))
    return ds


def combine_metric_sets(datasets: Sequence[xr.Dataset], **attrs: Any) -> xr.Dataset:
    """Merge one-run MetricSets into one table; metrics missing for a run are NaN, and so are
    the curve points past a run's last checkpoint when runs have different checkpoint counts.
    The pairwise correlations (``pair_*``, up to 4950 values a run) stay in the runs' stores."""
    merged = xr.merge(
        [ds.drop_attrs(deep=False).drop_dims("pair", errors="ignore") for ds in datasets],
        join="outer",
        compat="no_conflicts",
    )
    return merged.assign_attrs(attrs)
