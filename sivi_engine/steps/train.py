"""The training step: fit one method to one target with one seed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sivi_engine import artifacts
from sivi_engine.metric_metadata import entries_to_json
from sivi_engine.provenance import training_code_hash
from sivi_engine.runtime import describe_device, resolve_device
from sivi_engine.settings import SettingsError, resolve, split_target_overrides, to_json
from sivi_engine.steps.common import (
    check_bytes,
    check_memory,
    check_output,
    provenance_attrs,
)
from sivi_engine.targets import make_target

if TYPE_CHECKING:
    from sivi_engine.methods.base import CommonSettings, Method
    from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """What a run trains, resolved and checked: the method, the target and the settings."""

    method: Method
    target: Target
    settings: CommonSettings


def prepare(
    method_name: str,
    target_name: str,
    overrides: Mapping[str, Any],
    make: Callable[[str, Mapping[str, Any]], Target] = make_target,
) -> PreparedRun:
    """Resolve a run as training will run it, refusing what cannot run before any work: a
    target the method declares unsupported, target and method settings (the method's defaults <
    the target's for this method, ``Target.method_defaults`` < ``overrides``; ``target.KEY``
    keys are the target's), and draws or working arrays that cannot fit in memory. The
    workflow's pre-flight check calls it for every run of a config
    (:mod:`sivi_engine.steps.check`), with a ``make`` that builds each target once."""
    from sivi_engine.methods import METHODS  # every method module: here only
    from sivi_engine.methods.checkpoints import checkpoint_iterations

    method = METHODS[method_name]()
    if target_name in method.unsupported_targets:
        raise SettingsError(
            f"method {method_name!r} cannot run on target {target_name!r}: "
            f"{method.unsupported_targets[target_name]}"
        )
    target_overrides, method_overrides = split_target_overrides(overrides)
    target = make(target_name, target_overrides)
    defaults = target.method_defaults(method.Settings, method_name)
    settings = resolve(method.Settings, defaults | method_overrides)
    check_memory("num_draws", settings.num_draws, target.dim)
    checkpoints = len(checkpoint_iterations(settings))
    check_memory("checkpoint_draws", settings.draws_per_checkpoint, target.dim, checkpoints)
    need = method.memory_need(settings, target.dim)
    if need is not None:
        check_bytes(*need, f"{method_name}'s largest working array")
    return PreparedRun(method, target, settings)


def train(
    method_name: str,
    target_name: str,
    seed: int,
    out: Path,
    device: str,
    overrides: Mapping[str, Any],
    label: str | None = None,
    target_label: str | None = None,
) -> Path:
    """Fit a method to a target with one seed and store the SampleSet, with the draws at the
    training checkpoints (the run as :func:`prepare` resolves it). ``label`` and
    ``target_label`` (the config's names of the method and target variants, default the
    registered names) key the store."""
    check_output(out)
    run = prepare(method_name, target_name, overrides)
    method, target, settings = run.method, run.target, run.settings
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    start = time.perf_counter()
    result = method.fit(target.training_view(), settings, torch_device)
    samples = result.samples.detach().double().cpu().numpy()
    wall = time.perf_counter() - start
    trace = result.trace
    reported = [*result.diagnostics, *trace.checkpoint_diagnostics]
    metadata = method.diagnostics.resolve(reported, f"method {method_name!r}")
    ds = artifacts.sample_set(
        samples,
        target.param_names(),
        step=trace.step,
        loss=trace.loss,
        elapsed=trace.elapsed,
        checkpoint_samples=trace.checkpoint_samples,
        checkpoint_iteration=trace.checkpoint_iteration,
        checkpoint_seconds=trace.checkpoint_seconds,
        checkpoint_diagnostics=trace.checkpoint_diagnostics,
        method=method_name,
        label=label or method_name,
        target=target_name,
        target_label=target_label or target_name,
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
        diagnostics_metadata=artifacts.json_attr(entries_to_json(metadata)),
        **provenance_attrs(),
    )
    return artifacts.write(ds, out, artifacts.SAMPLE_SET)
