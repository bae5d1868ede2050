"""The describe step: what the report shows of a target itself, from the target's declarations.

The report reads targets only through this artifact (it imports no target class): the
capabilities the target declares (:mod:`sivi_engine.targets.capabilities`), its density on a
grid over ``plot_bounds`` for d ≤ 2, and for a :class:`~sivi_engine.targets.capabilities.LatentPath`
its times, true path and observations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sivi_engine import artifacts
from sivi_engine.provenance import settings_hash
from sivi_engine.settings import SettingsError, split_target_overrides, to_json
from sivi_engine.steps.common import provenance_attrs
from sivi_engine.targets import make_target
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import LatentPath, declared_capabilities

#: Grid points per axis of the density, by target dimension (no density for other dimensions).
DENSITY_RESOLUTION = {1: 400, 2: 160}


def density_grid(target: Target, resolution: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Grid axes over ``plot_bounds`` and the target density on it, normalised to integrate to
    one over the box (the target may be unnormalised); shape (x,) or (y, x)."""
    axes = [np.linspace(lo, hi, resolution) for lo, hi in target.plot_bounds()]
    mesh = np.meshgrid(*axes, indexing="xy")
    points = np.stack([m.ravel() for m in mesh], axis=1)
    with torch.no_grad():
        log_p = target.log_prob(torch.as_tensor(points, dtype=torch.float64)).numpy()
    density = np.exp(log_p - np.nanmax(log_p))
    cell = np.prod([a[1] - a[0] for a in axes])
    density = density / (np.nansum(density) * cell)
    return axes, density.reshape(mesh[0].shape)


def path_arrays(target: LatentPath) -> dict[str, np.ndarray]:
    """The TargetDescription's path variables of a path-valued target."""
    return {
        "path_time": target.times(),
        "true_path": target.true_path(),
        "observation_time": target.observation_times(),
        "observation": target.observations(),
    }


def describe(
    target_name: str, out: Path, overrides: Mapping[str, Any], target_label: str | None = None
) -> Path:
    """Store the TargetDescription of the registered target ``target_name`` (settings as
    ``target.KEY`` overrides), keyed by ``target_label`` (default: the registered name)."""
    target_overrides, others = split_target_overrides(overrides)
    if others:
        raise SettingsError(
            f"describe: settings {sorted(others)} are not target settings; "
            "only target.KEY=VALUE settings are allowed"
        )
    target = make_target(target_name, target_overrides)
    resolution = DENSITY_RESOLUTION.get(target.dim)
    target_settings = to_json(target.settings)
    ds = artifacts.target_description(
        target.param_names(),
        density=density_grid(target, resolution) if resolution else None,
        path=path_arrays(target) if isinstance(target, LatentPath) else None,
        target=target_name,
        target_label=target_label or target_name,
        target_settings=target_settings,
        target_hash=settings_hash(target_name, target_settings),
        capabilities=json.dumps(declared_capabilities(target)),
        dim=target.dim,
        **provenance_attrs(),
    )
    return artifacts.write(ds, out, artifacts.TARGET_DESCRIPTION)
