"""The evaluation step: score one run's draws against the target's reference draws (or, where
the ``none`` engine drew none, by their held-out predictive scores alone)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sivi_engine import artifacts
from sivi_engine.metric_catalogue import describer
from sivi_engine.metric_metadata import Catalogue, entries_from_json, lower, neutral
from sivi_engine.runtime import describe_device, resolve_device
from sivi_engine.settings import SettingsError, resolve, to_json
from sivi_engine.steps.common import check_output, provenance_attrs
from sivi_engine.targets import make_target
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import HeldOutData

#: The run's status this step adds to the metrics.
STATUS = Catalogue(
    always={
        "suspect": lower(
            "1 when the run diverged or failed the sanity gate (reasons in the MetricSet"
            " attribute suspect_reasons), else 0"
        ).marked("status"),
        "diverged": lower("1 when training did not end ok or left non-finite draws, else 0").marked(
            "status"
        ),
        "scored_draws": neutral("number of q's draws scored (evaluation setting num_draws)"),
        "wall_seconds": lower("training wall-clock time in seconds", unit="s"),
    }
)


def held_out_scores(target: Target, draws: np.ndarray, settings: Any) -> dict[str, float]:
    """The held-out predictive scores of q's draws alone (``target.predictive``), for a target
    evaluated without reference draws: what the ``predictive`` metric group gives without its
    ``reference_`` scores."""
    from sivi_engine.metrics.predictive import predictive_scores

    if not isinstance(target, HeldOutData):
        raise SettingsError(f"evaluate: target {target.name!r} has no reference draws to score")
    scores = target.predictive(draws)
    return predictive_scores(scores, target.test_response(), settings.calibration_bins)


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
    (a JSON list). The resolved settings are the attribute ``evaluation_settings`` (JSON); a
    classifier's reliability curves, q's and the reference's on ``calibration_bins`` bins, are
    ``reliability_*`` variables (:func:`sivi_engine.metrics.reliability_curves`), and the
    pairwise correlations behind the ``corr_`` metrics ``pair_*`` variables
    (:func:`sivi_engine.metrics.correlation_pairs`).

    Every checkpoint's draws are scored as stored, whatever the run's status: curves
    ``curve_<metric>`` beside ``curve_iteration`` and ``curve_seconds`` (training-loop
    seconds), and ``floor_<metric>``, the reference's noise floor at the checkpoints' draw
    count, both against the same reference draws
    (:func:`sivi_engine.metrics.curves.checkpoint_scores`; the attribute ``noise_floor``
    records the draw counts and whether the floor was scored); a method's own diagnostics at
    the checkpoints (``checkpoint_diagnostic_<name>`` in the SampleSet) become ``curve_<name>``.
    The training diagnostics and the gate stay on the final draws.
    """
    from sivi_engine.metrics import (  # scipy: here only
        EvaluationContext,
        EvaluationSettings,
        correlation_pairs,
        draws_to_score,
        evaluate_all,
        reliability_curves,
    )
    from sivi_engine.metrics.curves import checkpoint_scores
    from sivi_engine.metrics.gate import divergence_reasons, gate_reasons, trusted_evidence

    check_output(out)
    samples = artifacts.read(samples_path, artifacts.SAMPLE_SET)
    ref = artifacts.read(reference_path, artifacts.REFERENCE_DRAWS)
    for key, read in (
        ("target", lambda attrs: attrs["target"]),
        ("target_label", artifacts.target_label),
        ("target_settings", lambda attrs: attrs["target_settings"]),
    ):
        if read(samples.attrs) != read(ref.attrs):
            raise SettingsError(
                f"evaluate: {key} differs between {samples_path} ({read(samples.attrs)}) "
                f"and {reference_path} ({read(ref.attrs)})"
            )
    settings = resolve(EvaluationSettings, overrides)
    torch_device = resolve_device(device)
    target = make_target(samples.attrs["target"], json.loads(samples.attrs["target_settings"]))
    for path, store in ((samples_path, samples), (reference_path, ref)):
        if store.sizes["param"] != target.dim:
            raise SettingsError(
                f"evaluate: {path} holds {store.sizes['param']} parameters, but target "
                f"{samples.attrs['target']!r} has dimension {target.dim}"
            )
    draws = draws_to_score(samples.samples.values, settings)
    reference_draws = ref.draws.values.reshape(-1, ref.sizes["param"])
    diverged = divergence_reasons(
        samples.attrs["status"], bool(np.isfinite(samples.samples.values).all())
    )
    reliability: dict[str, np.ndarray] = {}
    pairs: dict[str, np.ndarray] = {}
    metrics: dict[str, float] = {
        "wall_seconds": float(samples.attrs["wall_seconds"]),
        "scored_draws": float(draws.shape[0]),
        "diverged": float(bool(diverged)),
    }
    has_reference = reference_draws.shape[0] > 0  # none: the `none` engine's empty store
    if not diverged and has_reference:
        context = EvaluationContext(
            samples=draws,
            reference=reference_draws,
            target=target,
            settings=settings,
            device=torch_device.type,
        )
        metrics |= evaluate_all(context) | json.loads(samples.attrs["diagnostics"])
        reliability = reliability_curves(context)
        pairs = correlation_pairs(context)
    elif not diverged:
        metrics |= held_out_scores(target, draws, settings)
        metrics |= json.loads(samples.attrs["diagnostics"])
    evidence = trusted_evidence(ref.attrs["engine"], json.loads(ref.attrs["diagnostics"]))
    reasons = diverged or (gate_reasons(metrics, evidence, settings) if has_reference else [])
    metrics["suspect"] = float(bool(reasons))
    checkpoint_draws = samples.checkpoint_samples.values
    curves, floor = (
        checkpoint_scores(checkpoint_draws, reference_draws, target, settings, torch_device.type)
        if has_reference
        else ({}, {})
    )
    times = {
        "iteration": samples.checkpoint_iteration.values,
        "seconds": samples.checkpoint_seconds.values,
    }
    prefix = artifacts.CHECKPOINT_DIAGNOSTIC_PREFIX
    method_curves = {
        str(name).removeprefix(prefix): samples[name].values
        for name in samples.data_vars
        if str(name).startswith(prefix)
    }
    method_diagnostics = Catalogue(
        sometimes=entries_from_json(json.loads(samples.attrs["diagnostics_metadata"]))
    )
    ds = artifacts.metric_set(
        metrics | floor,
        artifacts.target_label(samples.attrs),
        samples.attrs["label"],
        int(samples.attrs["seed"]),
        curves=times | method_curves | curves,
        reliability=reliability,
        pairs=pairs,
        describe=describer(STATUS, method_diagnostics),
        evaluation_settings=to_json(settings),
        noise_floor=artifacts.json_attr(
            {
                "floor_draws": checkpoint_draws.shape[1],
                "reference_draws": reference_draws.shape[0],
                "scored": bool(floor),
            }
        ),
        method=samples.attrs["method"],
        target_name=samples.attrs["target"],
        samples_path=str(samples_path),
        reference_path=str(reference_path),
        target_settings=samples.attrs["target_settings"],
        device=describe_device(torch_device),
        suspect_reasons=artifacts.json_attr(reasons),
        **provenance_attrs(),
    )
    return artifacts.write(ds, out, artifacts.METRIC_SET)
