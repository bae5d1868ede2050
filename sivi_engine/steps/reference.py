"""The reference step: draws of a target's posterior from a reference engine."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sivi_engine import artifacts
from sivi_engine.provenance import settings_hash
from sivi_engine.settings import resolve, split_target_overrides, to_json
from sivi_engine.steps.common import check_memory, check_output, provenance_attrs
from sivi_engine.targets import make_target

if TYPE_CHECKING:
    from sivi_engine.reference.base import ReferenceEngine, ReferenceSettings
    from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class PreparedReference:
    """What a reference run draws from, resolved and checked: the target, engine, settings."""

    target: Target
    engine: ReferenceEngine
    settings: ReferenceSettings


def prepare(
    target_name: str,
    engine_name: str,
    overrides: Mapping[str, Any],
    make: Callable[[str, Mapping[str, Any]], Target] = make_target,
) -> PreparedReference:
    """Resolve a reference run, refusing before any work bad target or engine settings
    (``target.KEY`` keys are the target's) and draws that cannot fit in memory; the workflow's
    pre-flight check calls it for every target of a config (:mod:`sivi_engine.steps.check`),
    with a ``make`` that builds each target once."""
    from sivi_engine.reference import ENGINES  # scipy.stats and the samplers: here only

    target_overrides, engine_overrides = split_target_overrides(overrides)
    target = make(target_name, target_overrides)
    engine = ENGINES[engine_name]()
    settings = resolve(engine.Settings, engine_overrides)
    engine.check(target, settings)
    check_memory("num_draws", engine.stored_draws(settings), target.dim)
    return PreparedReference(target, engine, settings)


def reference(
    target_name: str,
    out: Path,
    engine_name: str,
    overrides: Mapping[str, Any],
    target_label: str | None = None,
) -> Path:
    """Draw reference draws of a target with a reference engine and store ReferenceDraws,
    keyed by ``target_label`` (default: the registered name)."""
    check_output(out)
    prepared = prepare(target_name, engine_name, overrides)
    target, engine, settings = prepared.target, prepared.engine, prepared.settings
    start = time.perf_counter()
    result = engine.run(target, settings)
    target_settings = to_json(target.settings)
    ds = artifacts.reference_draws(
        result.draws,
        target.param_names(),
        sample_stats=result.sample_stats,
        target=target_name,
        target_label=target_label or target_name,
        target_settings=target_settings,
        target_hash=settings_hash(target_name, target_settings),
        engine=result.engine or engine_name,
        engine_settings=to_json(settings),
        seed=settings.seed,
        diagnostics=artifacts.json_attr(result.diagnostics),
        wall_seconds=time.perf_counter() - start,
        **provenance_attrs(),
    )
    return artifacts.write(ds, out, artifacts.REFERENCE_DRAWS)
