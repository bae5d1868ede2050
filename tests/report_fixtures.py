"""Helpers shared by the report tests (tests/test_report_*.py): the stores of fake runs,
written with the artifact writers, the store list a report is given, its per-target inputs,
and the Markdown sections and tables of a built report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from metric_fixtures import metric_set

from sivi_engine import artifacts
from sivi_engine.report import runs as rn
from sivi_engine.report import views
from sivi_engine.steps.describe import describe

LABELS = ("svgd", "ksivi_u")  # not alphabetical: the report keeps config order
SEEDS = (0, 1, 2)
VERSIONS = artifacts.json_attr({"numpy": np.__version__, "torch": torch.__version__})

COMMON = {"versions": VERSIONS, "created": "2026-01-01T00:00:00+00:00", "target_settings": "{}"}


def run_status(n_draws: int, diverged: bool = False, suspect: bool = False) -> dict[str, float]:
    """The run-status variables of a per-run MetricSet (reference scores NaN: not applicable,
    unless the run's metrics hold them)."""
    predictive = ("test_log_likelihood", "accuracy", "rmse", "ece", "ood_auroc")
    reference = {f"reference_{m}": float("nan") for m in predictive}
    return {
        "suspect": float(suspect),
        "diverged": float(diverged),
        "scored_draws": float(n_draws),
        **reference,
    }


def write_reference(
    root: Path, target_name: str, names: list[str], draws: np.ndarray, engine: str = "exact"
) -> Path:
    """A ReferenceDraws store of ``draws`` (chain, draw, param) below ``root``/reference, and
    the target's real TargetDescription below ``root``/targets."""
    describe(target_name, root / "targets" / f"{target_name}.zarr", {})
    path = root / "reference" / f"{target_name}.zarr"
    artifacts.write(
        artifacts.reference_draws(
            draws,
            names,
            target=target_name,
            target_hash="h",
            engine=engine,
            engine_settings="{}",
            seed=0,
            diagnostics="{}",
            wall_seconds=0.5,
            **COMMON,
        ),
        path,
        artifacts.REFERENCE_DRAWS,
    )
    return path


def run_dir(root: Path, target_name: str, label: str, seed: int) -> Path:
    return root / "runs" / target_name / label / f"seed{seed}"


def write_sample_set(
    root: Path,
    target_name: str,
    names: list[str],
    label: str,
    seed: int,
    samples: np.ndarray,
    loss: np.ndarray,
    status: str = "ok",
    settings: str = "{}",
) -> Path:
    """The SampleSet store of one run below ``root``/runs; its checkpoint draws are a stand-in
    (the report reads the MetricSet's curves, never the checkpoint draws)."""
    step = np.arange(0, 5 * len(loss), 5)
    return artifacts.write(
        artifacts.sample_set(
            samples,
            names,
            step,
            loss,
            step * 0.01,
            checkpoint_samples=samples[None, :10],
            checkpoint_iteration=np.array([500]),
            checkpoint_seconds=np.array([10.0 + seed]),
            method=label.split("_")[0],
            label=label,
            target=target_name,
            seed=seed,
            settings=settings,
            code_hash="c",
            device="cpu",
            wall_seconds=10.0 + seed,
            iterations=500,
            status=status,
            diagnostics="{}",
            diagnostics_metadata="{}",
            stopped_on_budget=0,
            checkpoint_overhead_seconds=0.0,
            **COMMON,
        ),
        run_dir(root, target_name, label, seed) / "samples.zarr",
        artifacts.SAMPLE_SET,
    )


def write_run(
    root: Path,
    target_name: str,
    names: list[str],
    label: str,
    seed: int,
    samples: np.ndarray,
    metrics: dict[str, float],
    loss: np.ndarray,
    status: str = "ok",
    suspect_reasons: tuple[str, ...] = (),
    curves: dict[str, np.ndarray] | None = None,
    settings: str = "{}",
    reliability: dict[str, np.ndarray] | None = None,
    pairs: dict[str, np.ndarray] | None = None,
) -> Path:
    """SampleSet and MetricSet stores of one run, the MetricSet with its run-status variables
    (suspect when ``suspect_reasons`` are given), ``curves`` (name → one value per checkpoint)
    ``reliability`` (name → one value per calibration bin) and ``pairs`` (name → one value per
    parameter pair); returns the MetricSet path.
    The MetricSet names no other store: the report must find them among the stores it is
    given."""
    write_sample_set(root, target_name, names, label, seed, samples, loss, status, settings)
    status_variables = run_status(len(samples), status != "ok", bool(suspect_reasons))
    metrics_ds = metric_set(
        status_variables | metrics,  # the metrics hold no flag; their reference_* scores win
        target_name,
        label,
        seed,
        curves=curves,
        reliability=reliability,
        pairs=pairs,
        method=label.split("_")[0],
        suspect_reasons=json.dumps(list(suspect_reasons)),
        **COMMON,
    )
    path = run_dir(root, target_name, label, seed) / "metrics.zarr"
    return artifacts.write(metrics_ds, path, artifacts.METRIC_SET)


def bare_run(
    target: str, label: str = "k", seed: int = 0, metrics_path: Path = Path("m"), **fields: Any
) -> rn.Run:
    """A Run of ``target`` with placeholder stores and settings (``fields`` override them)."""
    defaults = dict(
        method="ksivi",
        settings={},
        target_settings={},
        samples_path=Path("s"),
        reference_path=Path("r"),
        train_seconds=1.0,
        started=0.0,
        versions={},
        diverged=False,
        suspect=False,
        suspect_reasons=(),
        evaluation_settings={},
        target_name=target,
    )
    return rn.Run(target, label, seed, metrics_path=metrics_path, **(defaults | fields))


def stores_below(root: Path, metrics: Sequence[Path]) -> rn.ReportStores:
    """The report's stores: the MetricSets ``metrics`` (in this order: the report keeps the
    runs' order) and every SampleSet, ReferenceDraws and TargetDescription below ``root``."""
    return rn.ReportStores(
        metrics=list(metrics),
        samples=sorted(root.glob("runs/*/*/*/samples.zarr")),
        references=sorted(root.glob("reference/*.zarr")),
        descriptions=sorted(root.glob("targets/*.zarr")),
    )


def report_target_data(stores: rn.ReportStores) -> dict[str, views.TargetData]:
    """The report's per-target inputs, read from ``stores`` as :func:`build_report` reads them."""
    from sivi_engine.report.build import combine

    sample_sets = rn.sample_set_index(stores.samples)
    references = rn.target_index(stores.references, artifacts.REFERENCE_DRAWS)
    descriptions = rn.target_index(stores.descriptions, artifacts.TARGET_DESCRIPTION)
    loaded = [rn.read_run(p, sample_sets, references) for p in stores.metrics]
    run_list = [run for _, run in loaded]
    summary = rn.summarise_runs(run_list)
    combined = combine([ds for ds, _ in loaded], summary, "now", {})
    return views.target_data(run_list, summary, combined, descriptions)


def section(md: str, target: str) -> str:
    return md.split(f"### {target}\n")[1].split("\n## ")[0].split("\n### ")[0]


def table_rows(text: str, header_start: str) -> dict[str, list[str]]:
    """First cell → other cells of the Markdown table whose header starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows
