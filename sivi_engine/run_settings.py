"""A run's method settings as the config gives them, one function for the workflow and the
tests: the config's global ``method_settings`` < the target label's block for the registered
method (``targets.<label>.methods.<method>``) < the method label's own keys. The train step
puts these over the method's and the target's defaults (:func:`sivi_engine.steps.train.train`).

Pure Python over the config mapping: the Snakefile calls it, torch unloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sivi_engine.target_labels import TargetLabel

#: Label keys that are not method settings: the registered method, the targets it runs on, and
#: the paper or official config file its settings are quoted from.
LABEL_KEYS = ("method", "targets", "source")
#: Keys of a per-target method block that are not settings.
PER_TARGET_KEYS = ("source",)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of ``override`` win."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = merge(merged[key], value)
        merged[key] = value
    return merged


def config_method_settings(
    config: Mapping[str, Any], target: TargetLabel, label: str
) -> dict[str, Any]:
    """The method settings the config gives the run of method label ``label`` on ``target``."""
    spec = config["methods"][label]
    own = {k: v for k, v in spec.items() if k not in LABEL_KEYS}
    block = target.methods.get(spec["method"], {}) or {}
    per_target = {k: v for k, v in block.items() if k not in PER_TARGET_KEYS}
    return merge(merge(config.get("method_settings") or {}, per_target), own)


def scored_draws(
    config: Mapping[str, Any], target: TargetLabel, labels: Sequence[str]
) -> int | None:
    """Draws every run on ``target`` is scored on (at most): the fewest the config asks any of
    ``labels`` (those run there) for, or None where it asks none for a number (each run's own
    draws: the method's and target's defaults, the same for every run on the target)."""
    asked = [config_method_settings(config, target, label).get("num_draws") for label in labels]
    asked = [draws for draws in asked if draws is not None]
    return min(asked) if asked else None
