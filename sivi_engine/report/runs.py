"""The runs behind a report: per-run MetricSets matched to the SampleSets, reference draws and
target descriptions the report was given (the stores the ``report`` rule declares; no path is
taken from an artifact's attributes)."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sivi_engine import artifacts


@dataclasses.dataclass(frozen=True)
class ReportStores:
    """The stores a report reads: every run's MetricSet and SampleSet, and per target its
    ReferenceDraws and TargetDescription."""

    metrics: Sequence[Path]
    samples: Sequence[Path]
    references: Sequence[Path]
    descriptions: Sequence[Path]


#: A run's key: (target, label, seed).
RunKey = tuple[str, str, int]


class MissingStoreError(ValueError):
    """A run or target whose store the report was not given; names it and the option."""


def _run_key(attrs: Mapping[str, Any]) -> RunKey:
    return artifacts.target_label(attrs), str(attrs["label"]), int(attrs["seed"])


def sample_set_index(paths: Sequence[Path]) -> dict[RunKey, Path]:
    """(target label, method label, seed) → SampleSet path, from each store's attributes."""
    return {_run_key(artifacts.read_attrs(p, artifacts.SAMPLE_SET)): Path(p) for p in paths}


def target_index(paths: Sequence[Path], schema: artifacts.ArtifactSchema) -> dict[str, Path]:
    """Target label → path of its store of kind ``schema`` (ReferenceDraws,
    TargetDescription)."""
    return {artifacts.target_label(artifacts.read_attrs(p, schema)): Path(p) for p in paths}


def lookup(index: Mapping[Any, Path], key: Any, what: str, option: str) -> Path:
    """``index[key]``, or a :class:`MissingStoreError` naming ``what`` and the CLI option."""
    if key not in index:
        raise MissingStoreError(f"report: no {what} given for {key}; pass its store with {option}")
    return index[key]


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained (target label, method label, seed) and the stores its metrics came from;
    ``target_name`` is the registered target the target label runs."""

    target: str
    label: str
    seed: int
    method: str
    settings: dict[str, Any]  # the method's resolved settings, as training stored them
    target_settings: dict[str, Any]
    metrics_path: Path
    samples_path: Path
    reference_path: Path
    train_seconds: float
    started: float  # POSIX time at which training began
    versions: dict[str, str]
    diverged: bool  # training diverged (status not ok) or the draws were non-finite
    suspect: bool  # the evaluation's sanity gate found the fit grossly wrong
    suspect_reasons: tuple[str, ...]
    evaluation_settings: dict[str, Any]  # the evaluation's resolved settings
    target_name: str  # the registered target the target label runs

    @property
    def condition(self) -> str:
        """``"diverged"``, else ``"suspect"``, else ``"ok"``: the precedence of
        :data:`~sivi_engine.report.tables.EXCLUSIONS`."""
        return "diverged" if self.diverged else "suspect" if self.suspect else "ok"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Counts and times over all runs of a report."""

    targets: tuple[str, ...]
    labels: tuple[str, ...]
    seeds: tuple[int, ...]
    n_runs: int
    diverged: tuple[Run, ...]
    suspect: tuple[Run, ...]  # not diverged, flagged by the sanity gate
    train_seconds: float


def _flag(metrics: xr.Dataset, name: str) -> bool:
    """A one-run MetricSet's 0/1 variable ``name``; absent (older MetricSets) reads as 0."""
    return name in metrics.data_vars and float(metrics[name].values.squeeze()) == 1.0


def suspect_reasons(attrs: Mapping[str, Any]) -> tuple[str, ...]:
    """The sanity gate's reasons from the JSON attr ``suspect_reasons`` (a list of sentences, or
    a mapping check → sentence); none where the attr is absent."""
    reasons = json.loads(attrs.get("suspect_reasons", "[]"))
    if isinstance(reasons, Mapping):
        return tuple(f"{check}: {text}" for check, text in reasons.items())
    return (reasons,) if isinstance(reasons, str) else tuple(str(r) for r in reasons)


def read_run(
    metrics_path: Path, sample_sets: Mapping[RunKey, Path], references: Mapping[str, Path]
) -> tuple[xr.Dataset, Run]:
    """Open one per-run MetricSet and its run's SampleSet (from ``sample_sets``, by run) and
    note its target's reference store (from ``references``); return both views of the run.

    The returned MetricSet always holds the flags ``diverged`` (1 also when the SampleSet's
    status is not ok) and ``suspect`` (0 where the MetricSet lacks it).
    """
    metrics = artifacts.read(metrics_path, artifacts.METRIC_SET)
    attrs = metrics.attrs
    key = (
        str(metrics["target"].values[0]),
        str(metrics["method"].values[0]),
        int(metrics["seed"].values[0]),
    )
    samples_path = lookup(sample_sets, key, "SampleSet", "--samples")
    reference_path = lookup(references, key[0], "ReferenceDraws", "--references")
    samples = artifacts.read(samples_path, artifacts.SAMPLE_SET)
    status = str(samples.attrs["status"])
    diverged, suspect = status != "ok" or _flag(metrics, "diverged"), _flag(metrics, "suspect")
    metrics = metrics.assign(
        {
            name: xr.DataArray(
                np.full((1, 1, 1), float(value)),
                dims=("target", "method", "seed"),
                attrs=metrics[name].attrs if name in metrics.data_vars else {},
            )
            for name, value in (("diverged", diverged), ("suspect", suspect))
        }
    )
    run = Run(
        target=str(metrics["target"].values[0]),
        label=str(metrics["method"].values[0]),
        seed=int(metrics["seed"].values[0]),
        method=str(attrs["method"]),
        settings=json.loads(samples.attrs["settings"]),
        target_settings=json.loads(attrs["target_settings"]),
        metrics_path=Path(metrics_path),
        samples_path=samples_path,
        reference_path=reference_path,
        train_seconds=float(samples.attrs["wall_seconds"]),
        started=datetime.datetime.fromisoformat(samples.attrs["created"]).timestamp()
        - float(samples.attrs["wall_seconds"]),
        versions=json.loads(attrs["versions"]),
        diverged=diverged,
        suspect=suspect,
        suspect_reasons=suspect_reasons(attrs),
        evaluation_settings=json.loads(attrs.get("evaluation_settings", "{}")),
        target_name=str(attrs.get("target_name", metrics["target"].values[0])),
    )
    return metrics, run


def unique(values: Iterable[Any]) -> tuple[Any, ...]:
    """``values`` without repeats, in order of first appearance."""
    return tuple(dict.fromkeys(values))


def merged_versions(runs: Sequence[Run]) -> dict[str, str]:
    """Package → version over all runs; a package seen at several versions lists them all."""
    seen: dict[str, list[str]] = {}
    for run in runs:
        for package, version in run.versions.items():
            seen.setdefault(package, [])
            if str(version) not in seen[package]:
                seen[package].append(str(version))
    return {package: " / ".join(versions) for package, versions in seen.items()}


def summarise_runs(runs: Sequence[Run]) -> RunSummary:
    """Targets, labels and seeds (in order of appearance; seeds sorted), diverged and suspect
    runs, training time."""
    return RunSummary(
        targets=unique(r.target for r in runs),
        labels=unique(r.label for r in runs),
        seeds=tuple(sorted(unique(r.seed for r in runs))),
        n_runs=len(runs),
        diverged=tuple(r for r in runs if r.condition == "diverged"),
        suspect=tuple(r for r in runs if r.condition == "suspect"),
        train_seconds=float(sum(r.train_seconds for r in runs)),
    )


def first_seed_runs(runs: Sequence[Run]) -> dict[str, Run]:
    """Label → its run with the smallest seed (the one whose samples a figure shows)."""
    return {
        label: min((r for r in runs if r.label == label), key=lambda r: r.seed)
        for label in unique(r.label for r in runs)
    }


def read_samples(run: Run) -> np.ndarray:
    """The run's posterior draws, shape (draw, param)."""
    return artifacts.read(run.samples_path, artifacts.SAMPLE_SET)["samples"].values


def read_loss(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The run's training trace: (step, loss)."""
    ds = artifacts.read(run.samples_path, artifacts.SAMPLE_SET)
    return ds["step"].values, ds["loss"].values


def read_pairs(run: Run) -> dict[str, np.ndarray]:
    """The pairwise correlations the run's MetricSet stores (``pair_<name>`` → values, one per
    parameter pair; none where the evaluation stored none)."""
    ds = artifacts.read(run.metrics_path, artifacts.METRIC_SET)
    prefix = artifacts.PAIR_PREFIX
    return {
        str(name).removeprefix(prefix): ds[name].values.reshape(-1)
        for name in ds.data_vars
        if str(name).startswith(prefix)
    }


def read_reference(path: Path) -> tuple[np.ndarray, str]:
    """Reference draws pooled over chains, shape (chain·draw, param), and the engine's name."""
    ds = artifacts.read(path, artifacts.REFERENCE_DRAWS)
    draws = ds["draws"].values
    return draws.reshape(-1, draws.shape[-1]), str(ds.attrs["engine"])
