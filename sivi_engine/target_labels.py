"""Target labels: the config's ``targets`` entries expanded into the rows of the run grid.

A config entry is keyed by a label. It runs the registered target named by its ``target`` key
(default: the label itself) with its ``settings``; a ``sweep`` of target settings, e.g.
``sweep: {split: [0, 1, 2]}``, expands it into one label per value (per combination, for
several settings): ``yacht_split0``, ``yacht_split1``, … each with that value among its
settings. This is how the UCI protocol's 20 random splits of one data set become 20 rows of the
grid, every store keyed by its label (as method labels key the method variants).

Pure Python over the config mapping: the Snakefile calls it at every start, torch unloaded.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: What a config label, target or method name may be: it becomes a path component and a word of
#: a shell command (the schema's ``$defs/name``).
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: What a sweep value may be once written into a label.
VALUE_PATTERN = re.compile(r"^[A-Za-z0-9]+$")


@dataclasses.dataclass(frozen=True)
class TargetLabel:
    """One row of the grid: ``label`` (its stores' key), the config ``key`` it came from, the
    registered ``target``, its target ``settings`` (the sweep's values included), the entry's
    ``reference`` options and per-method ``methods`` blocks, and ``method_labels``, the only
    method labels run on it (None: every label)."""

    label: str
    key: str
    target: str
    settings: dict[str, Any]
    reference: dict[str, Any]
    methods: dict[str, Any]
    method_labels: tuple[str, ...] | None = None

    def runs(self, method_label: str) -> bool:
        """Whether the method label runs on this target label (its ``method_labels``)."""
        return self.method_labels is None or method_label in self.method_labels


def _sweep_items(key: str, sweep: Mapping[str, Any]) -> list[tuple[str, Sequence[Any]]]:
    items = []
    for setting, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"config targets.{key}.sweep.{setting}: give a non-empty list of values"
            )
        for value in values:
            if isinstance(value, bool) or not VALUE_PATTERN.match(str(value)):
                raise ValueError(
                    f"config targets.{key}.sweep.{setting}: value {value!r} cannot be part of a "
                    "label; allowed: integers or words of letters and digits"
                )
        if len(set(map(str, values))) != len(values):
            raise ValueError(f"config targets.{key}.sweep.{setting}: repeated values {values}")
        items.append((setting, values))
    return items


def expand_target_labels(targets: Mapping[str, Mapping[str, Any]]) -> dict[str, TargetLabel]:
    """Label → :class:`TargetLabel` for every config entry, sweeps expanded, in config order.
    A generated label that is not a valid name, or that repeats another, is an error naming
    the entry."""
    expanded: dict[str, TargetLabel] = {}
    for key, entry in targets.items():
        entry = entry or {}
        settings = dict(entry.get("settings") or {})
        items = _sweep_items(key, entry.get("sweep") or {})
        overlap = sorted(set(settings) & {setting for setting, _ in items})
        if overlap:
            raise ValueError(
                f"config targets.{key}: {overlap} given both in `settings` and in `sweep`"
            )
        for combination in itertools.product(*(values for _, values in items)):
            swept = {setting: value for (setting, _), value in zip(items, combination)}
            label = "_".join([key, *(f"{setting}{value}" for setting, value in swept.items())])
            if not NAME_PATTERN.match(label):
                raise ValueError(
                    f"config targets.{key}: label {label!r} is not a valid name (letters, digits "
                    "and underscores, starting with a letter, at most 64)"
                )
            if label in expanded:
                raise ValueError(f"config targets.{key}: label {label!r} is defined twice")
            expanded[label] = TargetLabel(
                label=label,
                key=key,
                target=str(entry.get("target", key)),
                settings=settings | swept,
                reference=dict(entry.get("reference") or {}),
                methods=dict(entry.get("methods") or {}),
                method_labels=(tuple(entry["method_labels"]) if "method_labels" in entry else None),
            )
    return expanded
