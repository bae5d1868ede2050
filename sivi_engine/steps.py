"""The benchmark's steps as functions: reference, train, evaluate (the CLI calls these)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sivi_engine import artifacts
from sivi_engine.provenance import now, package_versions, settings_hash, training_code_hash
from sivi_engine.runtime import describe_device, resolve_device
from sivi_engine.settings import SettingsError, resolve, split_target_overrides, to_json
from sivi_engine.targets import make_target


def _provenance() -> dict[str, str]:
    return {"versions": artifacts.json_attr(package_versions()), "created": now()}


def reference(target_name: str, out: Path, engine_name: str, overrides: Mapping[str, Any]) -> Path:
    """Draw reference draws of a target with a reference engine and store ReferenceDraws."""
    from sivi_engine.reference import ENGINES  # scipy.stats and the samplers: here only

    target_overrides, engine_overrides = split_target_overrides(overrides)
    target = make_target(target_name, target_overrides)
    engine = ENGINES[engine_name]()
    settings = resolve(engine.Settings, engine_overrides)
    start = time.perf_counter()
    result = engine.run(target, settings)
    target_settings = to_json(target.settings)
    ds = artifacts.reference_draws(
        result.draws,
        target.param_names(),
        sample_stats=result.sample_stats,
        target=target_name,
        target_settings=target_settings,
        target_hash=settings_hash(target_name, target_settings),
        engine=result.engine or engine_name,
        engine_settings=to_json(settings),
        seed=settings.seed,
        diagnostics=artifacts.json_attr(result.diagnostics),
        wall_seconds=time.perf_counter() - start,
        **_provenance(),
    )
    return artifacts.write(ds, out, artifacts.REFERENCE_DRAWS)


def train(
    method_name: str,
    target_name: str,
    seed: int,
    out: Path,
    device: str,
    overrides: Mapping[str, Any],
    label: str | None = None,
) -> Path:
    """Fit a method to a target with one seed and store the SampleSet, with the draws at the
    training checkpoints. Method settings: the method's defaults < the target's
    (``Target.method_defaults``) < ``overrides``."""
    from sivi_engine.methods import METHODS  # every method module: here only

    method = METHODS[method_name]()
    target_overrides, method_overrides = split_target_overrides(overrides)
    target = make_target(target_name, target_overrides)
    settings = resolve(method.Settings, target.method_defaults(method.Settings) | method_overrides)
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    start = time.perf_counter()
    result = method.fit(target, settings, torch_device)
    samples = result.samples.detach().double().cpu().numpy()
    wall = time.perf_counter() - start
    trace = result.trace
    ds = artifacts.sample_set(
        samples,
        target.param_names(),
        step=trace.step,
        loss=trace.loss,
        elapsed=trace.elapsed,
        checkpoint_samples=trace.checkpoint_samples,
        checkpoint_iteration=trace.checkpoint_iteration,
        checkpoint_seconds=trace.checkpoint_seconds,
        method=method_name,
        label=label or method_name,
        target=target_name,
        target_settings=to_json(target.settings),
        seed=seed,
        settings=to_json(settings),
        code_hash=training_code_hash(method_name, target_name),
        device=describe_device(torch_device),
        wall_seconds=wall,
        iterations=trace.iterations,
        status=trace.status,
        stopped_on_budget=int(trace.stopped_on_budget),
        checkpoint_overhead_seconds=trace.checkpoint_overhead_seconds,
        diagnostics=artifacts.json_attr(result.diagnostics),
        **_provenance(),
    )
    return artifacts.write(ds, out, artifacts.SAMPLE_SET)


def evaluate(
    samples_path: Path,
    reference_path: Path,
    out: Path,
    overrides: Mapping[str, Any],
    device: str = "auto",
) -> Path:
    """Score a SampleSet against ReferenceDraws of the same target and store a MetricSet.

    The run is scored on ``num_draws`` of its draws (``scored_draws``); ``diverged`` is 1 when
    its status is not ok or a final draw is non-finite (then the final draws are not scored),
    and ``suspect`` is 1 when it diverged or failed the sanity gate
    (:mod:`sivi_engine.metrics.gate`), with the reasons in the attribute ``suspect_reasons``
    (a JSON list).

    Every checkpoint's draws are scored as stored, whatever the run's status: curves
    ``curve_<metric>`` beside ``curve_iteration`` and ``curve_seconds`` (training-loop
    seconds), and ``floor_<metric>``, the reference's noise floor at the checkpoints' draw
    count, both against the same reference draws
    (:func:`sivi_engine.metrics.curves.checkpoint_scores`; the attribute ``noise_floor``
    records the draw counts and whether the floor was scored). The training diagnostics and
    the gate stay on the final draws.
    """
    from sivi_engine.metrics import (  # scipy: here only
        EvaluationContext, EvaluationSettings, draws_to_score, evaluate_all,
    )
    from sivi_engine.metrics.curves import checkpoint_scores
    from sivi_engine.metrics.gate import divergence_reasons, gate_reasons, trusted_evidence

    samples = artifacts.read(samples_path, artifacts.SAMPLE_SET)
    ref = artifacts.read(reference_path, artifacts.REFERENCE_DRAWS)
    for key in ("target", "target_settings"):
        if samples.attrs[key] != ref.attrs[key]:
            raise SettingsError(
                f"evaluate: {key} differs between {samples_path} ({samples.attrs[key]}) "
                f"and {reference_path} ({ref.attrs[key]})"
            )
    settings = resolve(EvaluationSettings, overrides)
    torch_device = resolve_device(device)
    target = make_target(samples.attrs["target"], json.loads(samples.attrs["target_settings"]))
    draws = draws_to_score(samples.samples.values, settings)
    reference_draws = ref.draws.values.reshape(-1, ref.sizes["param"])
    diverged = divergence_reasons(samples.attrs["status"],
                                  bool(np.isfinite(samples.samples.values).all()))
    metrics: dict[str, float] = {
        "wall_seconds": float(samples.attrs["wall_seconds"]),
        "scored_draws": float(draws.shape[0]),
        "diverged": float(bool(diverged)),
    }
    if not diverged:
        context = EvaluationContext(
            samples=draws,
            reference=reference_draws,
            target=target,
            settings=settings,
            device=torch_device.type,
        )
        metrics |= evaluate_all(context) | json.loads(samples.attrs["diagnostics"])
    evidence = trusted_evidence(ref.attrs["engine"], json.loads(ref.attrs["diagnostics"]))
    reasons = diverged or gate_reasons(metrics, evidence, settings)
    metrics["suspect"] = float(bool(reasons))
    checkpoint_draws = samples.checkpoint_samples.values
    curves, floor = checkpoint_scores(checkpoint_draws, reference_draws, target, settings,
                                      torch_device.type)
    times = {"iteration": samples.checkpoint_iteration.values,
             "seconds": samples.checkpoint_seconds.values}
    ds = artifacts.metric_set(
        metrics | floor,
        samples.attrs["target"],
        samples.attrs["label"],
        int(samples.attrs["seed"]),
        curves=times | curves,
        noise_floor=artifacts.json_attr({
            "floor_draws": checkpoint_draws.shape[1],
            "reference_draws": reference_draws.shape[0],
            "scored": bool(floor),
        }),
        method=samples.attrs["method"],
        samples_path=str(samples_path),
        reference_path=str(reference_path),
        target_settings=samples.attrs["target_settings"],
        device=describe_device(torch_device),
        suspect_reasons=artifacts.json_attr(reasons),
        **_provenance(),
    )
    return artifacts.write(ds, out, artifacts.METRIC_SET)
